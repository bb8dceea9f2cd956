{
  description = "PANOSETI DAQ-node appliance: DaqData and UbloxControl daemons, the panoseti command, and a NixOS module";

  # One input, pinned by flake.lock; docs/nixos.md says where the pin came from and how to move it.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      # f pkgs for every system, pkgs being nixpkgs with this flake's overlay.
      forAllSystems =
        f:
        lib.genAttrs systems (
          system:
          f (
            import nixpkgs {
              inherit system;
              overlays = [ self.overlays.default ];
            }
          )
        );
    in
    {
      overlays.default = final: _prev: {
        panoseti-appliance = final.callPackage ./nix/package.nix { };
      };

      # services.panoseti (nixos/module.nix), with pkgs.panoseti-appliance for its `package`.
      nixosModules.default = {
        imports = [ ./nixos/module.nix ];
        nixpkgs.overlays = [ self.overlays.default ];
      };

      # One machine of an observatory: NixOS with the appliance enabled and configured by
      # `settings` (the keys of /etc/panoseti/panoseti.yaml). `modules` holds the rest of the
      # machine, its hardware configuration (which sets nixpkgs.hostPlatform) first.
      lib.mkNode =
        {
          hostName,
          modules ? [ ],
          settings ? { },
        }:
        nixpkgs.lib.nixosSystem {
          modules = [
            self.nixosModules.default
            {
              networking.hostName = hostName;
              services.panoseti = {
                enable = true;
                inherit settings;
              };
            }
          ]
          ++ modules;
        };

      # The fleet of examples/fleet (two DAQ nodes and a head node), evaluated by `nix flake check`.
      # Prefixed, so that `nixos-rebuild --flake .` on a machine called daq1 never picks one up.
      nixosConfigurations = lib.mapAttrs' (
        name: node: lib.nameValuePair "example-${name}" node
      ) (import ./examples/fleet/nodes.nix { inherit (self.lib) mkNode; });

      packages = forAllSystems (pkgs: {
        default = pkgs.panoseti-appliance;
        panoseti-appliance = pkgs.panoseti-appliance;
        demo = pkgs.callPackage ./nix/demo.nix { };
      });

      apps = forAllSystems (pkgs: {
        demo = {
          type = "app";
          program = lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.demo;
          meta.description = "The appliance on its bundled sample data, as `make demo` runs it";
        };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.callPackage ./nix/devshell.nix { };
      });

      checks = forAllSystems (pkgs: {
        # NixOS VM tests; they need KVM and a binary cache (docs/nixos.md).
        vm-node = pkgs.testers.runNixOSTest ./nixos/tests/node.nix;
        vm-fleet = pkgs.testers.runNixOSTest ./nixos/tests/fleet.nix;
        # nixos/module.nix evaluated with nixpkgs' lib alone.
        module-eval = import ./nixos/tests/module-eval.nix { inherit lib pkgs; };
      });
    };
}
