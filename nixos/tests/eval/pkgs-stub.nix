# A minimal stand-in for the parts of nixpkgs' `pkgs` that nixos/module.nix uses, so the module
# can be evaluated with nothing but nixpkgs' lib. Derivations are plain attribute sets that keep
# their inputs (the text of a file, the script of a command) for the checks to read.
{ lib }:

let
  fakeStorePath = name: "/nix/store/00000000000000000000000000000000-${name}";
  derivation =
    name: attrs:
    attrs
    // {
      type = "derivation";
      inherit name;
      outPath = fakeStorePath name;
    };
  writeText = name: text: derivation name { inherit text; };
in
{
  inherit writeText;

  runCommand = name: env: script: derivation name { inherit env script; };

  formats.yaml =
    { }:
    {
      # The value type of pkgs.formats.yaml: what YAML can hold.
      type =
        let
          valueType =
            lib.types.nullOr (
              lib.types.oneOf [
                lib.types.bool
                lib.types.int
                lib.types.float
                lib.types.str
                lib.types.path
                (lib.types.attrsOf valueType)
                (lib.types.listOf valueType)
              ]
            )
            // {
              description = "YAML value";
            };
        in
        valueType;
      # JSON is YAML, and the checks parse it back with a YAML reader.
      generate = name: value: writeText name (builtins.toJSON value);
    };

  panoseti-appliance = derivation "panoseti-appliance-0.1.0" {
    pname = "panoseti-appliance";
    version = "0.1.0";
  };
}
