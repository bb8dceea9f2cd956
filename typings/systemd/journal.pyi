import logging
from collections.abc import Callable

def send(
    MESSAGE: str,
    MESSAGE_ID: object = None,
    CODE_FILE: str | None = None,
    CODE_LINE: int | None = None,
    CODE_FUNC: str | None = None,
    **kwargs: object,
) -> None: ...

class JournalHandler(logging.Handler):
    def __init__(
        self,
        level: int = 0,
        sender_function: Callable[..., None] = ...,
        **kwargs: object,
    ) -> None: ...
