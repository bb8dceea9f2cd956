# Evaluates nixos/module.nix with nixpkgs' real lib.evalModules. The NixOS options the module sets
# are declared here, free-form (NixOS itself is not needed); the list options NixOS concatenates
# are declared as lists so that several definitions merge as they would on a node.
{
  lib,
  modules ? [ ],
}:

let
  inherit (lib) mkOption types;
  listOption =
    elemType:
    mkOption {
      type = types.listOf elemType;
      default = [ ];
    };
  # An option that takes any attributes, with `options` declared inside it.
  freeform =
    options:
    mkOption {
      type = types.submodule {
        freeformType = types.attrsOf types.anything;
        inherit options;
      };
      default = { };
    };

  nixosOptions = {
    options = {
      assertions = listOption types.unspecified;
      warnings = listOption types.str;
      environment = freeform { systemPackages = listOption types.package; };
      users = freeform { };
      networking.firewall = freeform { allowedTCPPorts = listOption types.port; };
      services.udev = freeform { packages = listOption types.package; };
      systemd = freeform {
        packages = listOption types.package;
        tmpfiles = freeform { rules = listOption types.str; };
      };
    };
  };
in
lib.evalModules {
  modules = [
    nixosOptions
    ../../module.nix
    { _module.args.pkgs = import ./pkgs-stub.nix { inherit lib; }; }
  ]
  ++ modules;
}
