# What /etc/panoseti/panoseti.yaml holds on each machine of the observatory (the `settings` of
# lib.mkNode, the keys of docs/configuration.md), as plain data: nodes.nix makes the machines from
# it, and the appliance's own tests evaluate its NixOS module with these settings.
let
  # A ZED-F9T: its UID (UbloxControl checks it against the receiver's SEC-UNIQID) and the surveyed
  # position of its antenna: latitude and longitude in degrees, height in metres.
  receiver = uid: lat_deg: lon_deg: height_m: {
    inherit uid;
    position = {
      format = "LLH";
      inherit lat_deg lon_deg height_m;
      acc_m = 0.02;
    };
  };

  # A DAQ node: UbloxControl configures the node's receiver whenever it is plugged in.
  daqNode = chip: {
    ublox = {
      apply_to_layers = [
        "RAM"
        "BBR"
      ];
      init_on_start = true;
      chips = [ chip ];
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
  daq1 = daqNode (receiver "DF03A241BC" 37.3414 (-121.6429) 1283.0);
  daq2 = daqNode (receiver "DF03A241BD" 37.3415 (-121.6428) 1283.5);

  # The head node runs no daemon: `panoseti daq stream`, `view` and `phdist` there read the DAQ
  # nodes from observatory.daq_nodes.
  head.observatory = {
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
}
