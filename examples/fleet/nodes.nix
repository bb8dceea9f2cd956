# The observatory's machines: two DAQ nodes and a head node, each made by the appliance's
# lib.mkNode (NixOS with services.panoseti enabled; `settings` are the keys of
# /etc/panoseti/panoseti.yaml, docs/configuration.md). flake.nix turns this into
# nixosConfigurations; the appliance's own flake evaluates it in `nix flake check`.
{ mkNode }:

let
  # A DAQ node: Hashpipe feeds DaqData, which serves the head node and astronomers on port 50051;
  # the node's ZED-F9T (`receiver`: its UID and antenna position) is configured by UbloxControl
  # whenever it is plugged in.
  daqNode =
    { hostName, receiver }:
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
      settings.ublox = {
        apply_to_layers = [
          "RAM"
          "BBR"
        ];
        init_on_start = true;
        chips = [ receiver ];
        cfg_key_settings = [
          {
            key = "CFG_TP_TP1_ENA"; # TP1: 1 PPS aligned to UTC
            value = 1;
          }
          {
            key = "CFG_TP_FREQ_TP1";
            value = 1;
          }
          {
            key = "CFG_TP_ANT_CABLEDELAY"; # ns of antenna cable
            value = 10;
          }
          {
            key = "CFG_MSGOUT_UBX_TIM_TP_USB";
            value = 1;
          }
          {
            key = "CFG_MSGOUT_UBX_NAV_TIMEUTC_USB";
            value = 1;
          }
        ];
      };
    };
in
{
  daq1 = daqNode {
    hostName = "daq1";
    receiver = {
      uid = "DF03A241BC";
      position = {
        format = "LLH";
        lat_deg = 37.3414;
        lon_deg = -121.6429;
        height_m = 1283.0;
        acc_m = 0.02;
      };
    };
  };

  daq2 = daqNode {
    hostName = "daq2";
    receiver = {
      uid = "DF03A241BD";
      position = {
        format = "LLH";
        lat_deg = 37.3415;
        lon_deg = -121.6428;
        height_m = 1283.5;
        acc_m = 0.02;
      };
    };
  };

  # The head node runs no daemon: `panoseti daq stream`, `view` and `phdist` there read the
  # DAQ nodes from observatory.daq_nodes.
  head = mkNode {
    hostName = "head";
    modules = [
      ./hardware.nix
      ./site.nix
      { services.panoseti.daqdata.enable = false; }
    ];
    settings.observatory = {
      head_node_ip_addr = "head";
      daq_nodes = [
        {
          ip_addr = "daq1";
          data_dir = "/mnt/panoseti";
          module_ids = "0-127";
        }
        {
          ip_addr = "daq2";
          data_dir = "/mnt/panoseti";
          module_ids = "128-255";
        }
      ];
    };
  };
}
