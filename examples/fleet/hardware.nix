# A stand-in for each machine's hardware configuration, enough for the fleet to evaluate. On a
# real machine, replace it with the hardware-configuration.nix that `nixos-generate-config` writes
# there (one per machine: give each node in nodes.nix its own file).
{ lib, ... }:
{
  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";
  boot.loader.grub.device = "/dev/sda";
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  # The NixOS release the machine was installed with; never changed afterwards.
  system.stateVersion = "25.11";
}
