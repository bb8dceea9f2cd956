# `nix run .#demo`: what `make demo` does (tools/demo.py, then tools/demo_ublox.py), with the
# packaged appliance instead of a virtualenv. The PNGs go to ./demo-output, or to the directory
# given as the first argument.
{
  lib,
  writeShellApplication,
  panoseti-appliance,
}:

let
  # The demos start the daemons found next to sys.executable, as in a virtualenv: an interpreter
  # whose bin/ holds python and the appliance's console scripts.
  python = panoseti-appliance.passthru.python.withPackages (ps: [
    (ps.toPythonModule panoseti-appliance)
  ]);
  # The two scripts in the repository's layout: demo_ublox.py reads the example receiver
  # configuration as tests/data/f9t_config.json5 next to tools/.
  scripts = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../tools/demo.py
      ../tools/demo_ublox.py
      ../tests/data/f9t_config.json5
    ];
  };
in
writeShellApplication {
  name = "panoseti-demo";
  runtimeInputs = [ python ];
  text = ''
    out="''${1:-$PWD/demo-output}"
    python ${scripts}/tools/demo.py --duration 10 --out "$out"
    python ${scripts}/tools/demo_ublox.py --duration 5
  '';
  meta = {
    description = "Run the PANOSETI appliance on its bundled sample data and an emulated ZED-F9T";
    mainProgram = "panoseti-demo";
  };
}
