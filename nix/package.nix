# The appliance as a Nix package: the `panoseti` command and both daemons, plus the systemd units,
# the udev rule and the sysusers.d and tmpfiles.d entries under $out/lib, where NixOS looks for them
# (systemd.packages, services.udev.packages). The flake's overlay makes it pkgs.panoseti-appliance.
{
  lib,
  python3,
}:

let
  # nixpkgs' python with pyubx2 1.4.0 and the libraries it needs. `self` makes python.pkgs and
  # python.withPackages (the dev shell, the demo) see the same overridden set.
  python = python3.override {
    self = python;
    packageOverrides = import ./python-overrides.nix { inherit lib; };
  };
  project = (lib.importTOML ../pyproject.toml).project;
  # pyproject.toml's plot and client extras.
  optional-dependencies = with python.pkgs; {
    plot = [
      matplotlib
      seaborn
    ];
    client = [
      pandas
      rich
    ];
  };
  fs = lib.fileset;
in
python.pkgs.buildPythonApplication {
  pname = project.name;
  inherit (project) version;
  pyproject = true;

  # What the build and the unit tests read, and nothing generated: the build writes _proto/ (from
  # protos/) and _units/ (from systemd/) itself.
  src = fs.toSource {
    root = ../.;
    fileset = fs.difference (fs.unions [
      ../pyproject.toml
      ../setup.py
      ../README.md
      ../protos
      ../systemd
      ../tools
      ../panoseti_appliance
      ../tests
      # tests/unit/test_config_docs.py compares the reference page with the schema and the examples.
      ../docs/configuration.md
      (fs.fileFilter (file: file.hasExt "yaml") ../examples)
    ]) (fs.unions [
      (fs.maybeMissing ../panoseti_appliance/_proto)
      (fs.maybeMissing ../panoseti_appliance/_units)
    ]);
  };

  # setup.py generates the protobuf modules with grpcio-tools during the build.
  build-system = with python.pkgs; [
    setuptools
    wheel
    grpcio-tools
  ];

  # The core is pyproject.toml's dependencies. The appliance on NixOS is the whole tool, plots and
  # `panoseti daq` included, so the extras (passthru.optional-dependencies) are installed too.
  dependencies =
    with python.pkgs;
    [
      grpcio
      grpcio-reflection
      grpcio-health-checking
      protobuf
      numpy
      pydantic
      pydantic-settings
      pyyaml
      json5
      pyubx2
      google-re2
      pyserial
      # `systemd` in nixpkgs before the 2025 rename to `systemd-python`.
      (python.pkgs.systemd-python or python.pkgs.systemd)
      watchfiles
      prometheus-client
      blosc2
    ]
    ++ optional-dependencies.plot
    ++ optional-dependencies.client;

  inherit optional-dependencies;

  # The package's own installer writes the units, the rule and the entries, as it does on Debian
  # (docs/operations.md), with ExecStart= pointing at $out/bin: one layout and one substitution
  # for both. The console scripts are wrapped only later (fixup), so the installed package is put
  # on the build's PYTHONPATH, which already holds the dependencies.
  postInstall = ''
    PYTHONPATH="$out/${python.sitePackages}:$PYTHONPATH" \
      "$out/bin/panoseti" install-units --prefix "$out" --bindir "$out/bin"
  '';

  pythonImportsCheck = [
    "panoseti_appliance"
    "panoseti_appliance._proto.daq_data_pb2"
    "panoseti_appliance._proto.ublox_control_pb2"
  ];

  nativeCheckInputs = with python.pkgs; [
    pytestCheckHook
    pytest-asyncio
    pytest-timeout
    hypothesis
    # tests/unit/test_protos.py regenerates the modules to check the installed ones are current.
    grpcio-tools
  ];

  # The unit tests need no network, no root and no systemd. The integration tests start daemons
  # and the system tests boot containers and VMs; the flake's VM checks cover that ground on NixOS.
  enabledTestPaths = [ "tests/unit" ];

  disabledTests = [
    # It runs the `panoseti` script found next to sys.executable, a virtualenv's layout; here the
    # interpreter is nixpkgs' python and the scripts are in $out/bin.
    "test_default_bindir_is_where_the_panoseti_command_lives"
  ];

  preCheck = ''
    export HOME="$TMPDIR" MPLBACKEND=Agg
    # Test the installed package, not the copy in the source tree.
    rm -r panoseti_appliance
  '';

  passthru = { inherit python; };

  meta = {
    inherit (project) description;
    license = lib.licenses.mit;
    mainProgram = "panoseti";
    platforms = lib.platforms.linux;
  };
}
