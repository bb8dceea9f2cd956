# A fleet as NixOS VMs (`nix build .#checks.x86_64-linux.vm-fleet`): two DAQ nodes and a head node
# on the test network, each configured through services.panoseti only.
# 1. Each DAQ node's daemon feeds itself from its built-in simulator (Hashpipe emulation on its own
#    sockets), daq1 as module 1 and daq2 as module 2, and opens port 50051 in the firewall.
# 2. The head node runs no daemon; its /etc/panoseti/panoseti.yaml lists both nodes
#    (observatory.daq_nodes), and `panoseti daq stream` with no server named merges both streams.
# 3. daq2's DaqData is stopped: the stream carries on with daq1 alone; daq2 is started again: the
#    stream picks it up by itself, without the client being restarted.
# The same merge and recovery are tested on one machine by
# tests/integration/test_client_daemon.py::test_merged_stream_survives_a_host_restart.
{ ... }:

let
  daqNode = module: {
    imports = [ ../module.nix ];
    services.panoseti = {
      enable = true;
      daqdata.openFirewall = true;
      settings = {
        hp_io.simulate_daq = true;
        daqdata.simulator = {
          mode = "uds";
          module_ids = [ module ];
          update_interval_seconds = 0.1;
        };
      };
    };
  };
in
{
  name = "panoseti-fleet";

  nodes = {
    daq1 = daqNode 1;
    daq2 = daqNode 2;
    head = {
      imports = [ ../module.nix ];
      services.panoseti = {
        enable = true;
        daqdata.enable = false;
        # The test network's /etc/hosts names every node.
        settings.observatory.daq_nodes = [
          {
            ip_addr = "daq1";
            module_ids = "1";
          }
          {
            ip_addr = "daq2";
            module_ids = "2";
          }
        ];
      };
    };
  };

  testScript = ''
    import json

    MERGED = "/var/log/merged.log"
    UNITS = "panoseti-daqdata.socket panoseti-daqdata.service"


    def line_count() -> int:
        return int(head.succeed(f"wc -l < {MERGED}").strip())


    def streamed(first: int, last: int | None = None) -> list[tuple[str, int]]:
        """(host, module) of the merged stream's lines first..last (1-based, complete lines only).

        A line is `HOST module=ID PRODUCT frame=N TIME min=V max=V`.
        """
        end = "$" if last is None else str(last)
        text = head.succeed(f"sed -n '{first},{end}p' {MERGED}")
        lines = text.split("\n")[:-1]  # the last element is empty, or a line still being written
        return [(line.split()[0], int(line.split()[1].removeprefix("module="))) for line in lines]


    start_all()
    for daq in (daq1, daq2):
        daq.wait_for_unit("panoseti-daqdata.service")
        daq.wait_for_open_port(50051)
    head.wait_for_unit("multi-user.target")

    with subtest("the head node reaches both DAQ nodes from observatory.daq_nodes"):
        t.assertEqual(
            json.loads(head.succeed("panoseti daq hosts")), {"daq1:50051": True, "daq2:50051": True}
        )

    with subtest("the head node's client merges both nodes' streams"):
        head.succeed(
            f"systemd-run --unit=merged --property=StandardOutput=append:{MERGED}"
            " --property=StandardError=journal panoseti daq stream --refresh-period 0.1"
        )
        head.wait_for_file(MERGED)
        both = {("daq1:50051", 1), ("daq2:50051", 2)}
        retry(lambda _last_try: set(streamed(1)) == both, 180)

    with subtest("daq2 stopped: the stream carries on with daq1"):
        daq2.succeed(f"systemctl stop {UNITS}")
        head.wait_until_succeeds(
            "journalctl -u merged -o cat | grep -q 're-subscribing to daq2:50051'", timeout=120
        )
        mark = line_count()
        # What daq2 sent before it stopped may still be printed just after the mark.
        retry(lambda _last_try: line_count() >= mark + 60, 120)
        later = streamed(mark + 21, mark + 60)
        t.assertEqual(len(later), 40)
        t.assertEqual(set(later), {("daq1:50051", 1)})
        t.assertEqual(head.succeed("systemctl is-active merged").strip(), "active")

    with subtest("daq2 back: the stream picks it up again by itself"):
        mark = line_count()
        daq2.succeed(f"systemctl start {UNITS}")
        retry(lambda _last_try: ("daq2:50051", 2) in streamed(mark + 1), 180)
        mark = line_count()
        retry(lambda _last_try: line_count() >= mark + 80, 120)
        t.assertEqual(set(streamed(mark + 1, mark + 80)), both)
        t.assertEqual(head.succeed("systemctl is-active merged").strip(), "active")
  '';
}
