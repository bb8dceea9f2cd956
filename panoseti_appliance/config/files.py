"""Reading a configuration file's text, with the one message for each way it can fail."""

from __future__ import annotations

from pathlib import Path


class FileProblems(Exception):
    """The file cannot be used; `problems` holds `FILE[:LINE]: …` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def read_text(path: Path) -> str:
    """The file's text, or a FileProblems naming the file and what to do."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileProblems([f"{path}: file not found; check the path"]) from None
    except IsADirectoryError:
        raise FileProblems([f"{path}: is a directory; give the path of a file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileProblems([f"{path}: cannot be read: {exc}"]) from None
