{
  description = "A PANOSETI observatory: its DAQ nodes and head node, deployed with deploy.sh";

  # The appliance, which brings the nixpkgs its package, module and VM tests were built with
  # (lib.mkNode builds every machine from it). An observatory's own repository names where the
  # appliance is published (a github: or git+https: URL) and pins it in its flake.lock; this path
  # works from a checkout of the appliance.
  inputs.panoseti.url = "path:../..";

  outputs =
    { panoseti, ... }:
    {
      nixosConfigurations = import ./nodes.nix { inherit (panoseti.lib) mkNode; };
    };
}
