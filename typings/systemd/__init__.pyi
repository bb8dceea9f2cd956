# Types of the parts of systemd-python the package calls. systemd-python ships no types and no stub
# package exists; these also keep the repository's systemd/ folder (unit files, no Python) from
# being taken for the systemd package by mypy, which searches the repository root.
