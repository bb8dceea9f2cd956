# The Python packages the appliance needs at versions nixpkgs does not carry: pyubx2 1.4.0 (pinned
# in pyproject.toml; nixpkgs has an older release) and the two libraries of the same author that it
# requires, each built from its PyPI release. nix/package.nix applies this as its python's
# packageOverrides, so nothing else in nixpkgs is affected.
{ lib }:
final: prev:
let
  # All three are setuptools sdists of one author with one licence. Their own test suites are not
  # run: their pytest settings demand pytest-cov and a coverage floor of 98 or 99 %.
  fromPypi =
    {
      pname,
      version,
      hash,
      description,
      dependencies ? [ ],
    }:
    final.buildPythonPackage {
      inherit pname version dependencies;
      pyproject = true;
      src = final.fetchPypi { inherit pname version hash; };
      build-system = [
        final.setuptools
        final.wheel
      ];
      pythonImportsCheck = [ pname ];
      meta = {
        inherit description;
        homepage = "https://github.com/semuconsulting/${pname}";
        license = lib.licenses.bsd3;
      };
    };
in
{
  pynmeagps = fromPypi {
    pname = "pynmeagps";
    version = "1.1.8";
    hash = "sha256-0aa2HXNJfZtt5N2pcgEQBsk5po8QFzckEk7TKGQnPKI=";
    description = "NMEA protocol parser and generator";
  };

  pyrtcm = fromPypi {
    pname = "pyrtcm";
    version = "1.2.1";
    hash = "sha256-N3e+P2tF+283dMom02qoovQeqsilj3L2cN9FWXRoj4w=";
    description = "RTCM3 protocol parser";
    dependencies = [ final.pynmeagps ];
  };

  pyubx2 = fromPypi {
    pname = "pyubx2";
    version = "1.4.0";
    hash = "sha256-i9XcDEG8ImwM1ogV+bXOXt+Dn+FP8I1NgqbWghGJ908=";
    description = "UBX protocol parser and generator";
    dependencies = [
      final.pynmeagps
      final.pyrtcm
    ];
  };
}
