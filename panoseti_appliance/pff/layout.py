"""The shape of a PFF frame that readers, writers and validators must agree on (docs/pff.md).

A frame is `JSON header` `\\n\\n*` `pixels`; these constants live here, not with one user,
because the parser, the file tail, the writer, the header rule and the Hashpipe socket reader
all depend on the same values.
"""

#: Bytes between the JSON header and the pixels.
HEADER_END = b"\n\n*"
#: Longest JSON header we accept while looking for HEADER_END.
MAX_HEADER_BYTES = 4096
#: Timing fields of every quabo record.
TIME_FIELDS = ("pkt_num", "pkt_tai", "pkt_nsec", "tv_sec", "tv_usec")
#: The per-quabo objects of a 4-quabo header (every product but ph256).
QUABO_KEYS = ("quabo_0", "quabo_1", "quabo_2", "quabo_3")
