# The observatory's machines: two DAQ nodes and a head node, each made by the appliance's
# lib.mkNode (NixOS with services.panoseti enabled) with its settings from settings.nix.
# flake.nix turns this into nixosConfigurations; the appliance's own flake evaluates it in
# `nix flake check`.
{ mkNode }:

let
  settings = import ./settings.nix;

  # A DAQ node: Hashpipe feeds DaqData, which serves the head node and astronomers on port 50051;
  # UbloxControl configures the node's ZED-F9T.
  daqNode =
    hostName:
    mkNode {
      inherit hostName;
      modules = [
        ./hardware.nix
        ./site.nix
        {
          services.panoseti = {
            daqdata.openFirewall = true;
            ublox.enable = true;
          };
          # The account Hashpipe runs under writes to the sockets of group panoseti.
          users.users.hashpipe = {
            isNormalUser = true;
            extraGroups = [ "panoseti" ];
          };
        }
      ];
      settings = settings.${hostName};
    };
in
{
  daq1 = daqNode "daq1";
  daq2 = daqNode "daq2";

  # The head node runs no daemon, only the clients.
  head = mkNode {
    hostName = "head";
    modules = [
      ./hardware.nix
      ./site.nix
      { services.panoseti.daqdata.enable = false; }
    ];
    settings = settings.head;
  };
}
