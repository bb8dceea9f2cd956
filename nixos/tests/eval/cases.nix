# Configurations of services.panoseti and what evaluating each must give: `fails` lists a piece of
# the message of every assertion that must fire (none for a good configuration). Used by
# tests/integration/test_nixos_module.py and by the flake's checks.<system>.module-eval.
let
  chip = import ../receiver.nix "DF03A241BC";
  fleet = import ../../../examples/fleet/settings.nix;
  # openFirewall with no TCP address other hosts can reach: the assertion names the setting.
  daqdataFirewallWithout = listen: {
    module.services.panoseti = {
      enable = true;
      daqdata.openFirewall = true;
      settings.daqdata.listen = listen;
    };
    fails = [ "services.panoseti.daqdata.openFirewall is set, but settings.daqdata.listen has no TCP" ];
  };
in
{
  defaults = {
    module.services.panoseti.enable = true;
    fails = [ ];
  };

  disabled = {
    module = { };
    fails = [ ];
  };

  # A DAQ node as docs/nixos.md shows it: both daemons, ports open, two products.
  full-node = {
    module.services.panoseti = {
      enable = true;
      daqdata = {
        openFirewall = true;
        hashpipeSockets = [
          "img16"
          "ph256"
        ];
        dataDir = "/data/panoseti";
      };
      ublox = {
        enable = true;
        openFirewall = true;
      };
      settings = {
        hp_io.module_ids = [
          1
          2
        ];
        daqdata.max_concurrent_rpcs = 200;
        ublox.chips = [ chip ];
        logging.level = "debug";
      };
    };
    fails = [ ];
  };

  # A head node: clients and the configuration of the fleet, no daemon (the example fleet's).
  head-node = {
    module.services.panoseti = {
      enable = true;
      daqdata.enable = false;
      settings = fleet.head;
    };
    fails = [ ];
  };

  custom-user = {
    module.services.panoseti = {
      enable = true;
      user = "hashpipe";
      group = "hashpipe";
    };
    fails = [ ];
  };

  # Evaluates, but the build-time check refuses the rendered file.
  bad-setting-value = {
    module.services.panoseti = {
      enable = true;
      settings.daqdata.max_concurrent_rpcs = -1;
    };
    fails = [ ];
  };

  firewall-without-tcp = daqdataFirewallWithout [ "unix:///run/panoseti/daqdata.sock" ];

  firewall-on-loopback = daqdataFirewallWithout [
    "127.0.0.1:50051"
    "unix:///run/panoseti/daqdata.sock"
  ];

  ublox-firewall-without-tcp = {
    module.services.panoseti = {
      enable = true;
      ublox = {
        enable = true;
        openFirewall = true;
      };
      settings.ublox = {
        chips = [ chip ];
        listen = [ "unix:///run/panoseti/ublox.sock" ];
      };
    };
    fails = [ "services.panoseti.ublox.openFirewall is set, but settings.ublox.listen has no TCP" ];
  };

  ublox-without-chips = {
    module.services.panoseti = {
      enable = true;
      ublox.enable = true;
    };
    fails = [ "services.panoseti.ublox.enable is set, but settings.ublox.chips is empty" ];
  };

  chip-with-device = {
    module.services.panoseti = {
      enable = true;
      ublox.enable = true;
      settings.ublox.chips = [
        chip
        (chip // { uid = "AB12CD34EF"; device = "/dev/ublox-f9t"; })
      ];
    };
    fails = [ "services.panoseti.settings.ublox.chips.1.device is set" ];
  };

  no-hashpipe-sockets = {
    module.services.panoseti = {
      enable = true;
      daqdata.hashpipeSockets = [ ];
    };
    fails = [ "services.panoseti.daqdata.hashpipeSockets is empty" ];
  };

  data-products-disagree = {
    module.services.panoseti = {
      enable = true;
      daqdata.hashpipeSockets = [ "img16" ];
      settings.daqdata.hashpipe.data_products = [
        "img16"
        "ph256"
      ];
    };
    fails = [ "settings.daqdata.hashpipe.data_products differs" ];
  };

  relative-data-dir = {
    module.services.panoseti = {
      enable = true;
      daqdata.dataDir = "runs";
    };
    fails = [ "services.panoseti.daqdata.dataDir must be an absolute path" ];
  };
}
