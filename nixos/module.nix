# services.panoseti: a PANOSETI DAQ node (DaqData, UbloxControl) or a head node (CLI and configuration).
#
# The unit files, the udev rule and the daemons come from the package (systemd.packages,
# services.udev.packages); this module adds only what is NixOS-side: the configuration file, the
# wantedBy links, restart triggers, the user and group, and the firewall. docs/nixos.md describes
# every option with a configuration to paste.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    any
    filter
    hasPrefix
    imap0
    last
    literalExpression
    mkDefault
    mkEnableOption
    mkIf
    mkMerge
    mkOption
    mkPackageOption
    optionals
    replaceStrings
    splitString
    toInt
    types
    unique
    ;

  cfg = config.services.panoseti;
  settingsFormat = pkgs.formats.yaml { };

  allDataProducts = [
    "img8"
    "img16"
    "ph256"
    "ph1024"
  ];
  defaultSocketTemplate = "/tmp/hashpipe_grpc.dp_{dp}.sock";
  configPath = "/etc/panoseti/panoseti.yaml";

  # A listen address is TCP unless it is a unix socket or a socket handed over by systemd.
  isTcp = address: !(hasPrefix "unix:" address) && !(hasPrefix "systemd:" address);
  # Loopback addresses serve this node only: no firewall port to open for them.
  isLoopback =
    address: hasPrefix "127." address || hasPrefix "[::1]:" address || hasPrefix "localhost:" address;
  isReachable = address: isTcp address && !(isLoopback address);
  tcpPorts = addresses: unique (map (a: toInt (last (splitString ":" a))) (filter isTcp addresses));

  section = name: cfg.settings.${name} or { };
  listenOf = daemon: (section daemon).listen or [ ];
  opensFirewall = daemon: cfg.${daemon}.enable && cfg.${daemon}.openFirewall;
  openPorts = daemon: optionals (opensFirewall daemon) (tcpPorts (listenOf daemon));
  # openFirewall with only unix:// or systemd: listen addresses has no port to open.
  firewallAssertion = daemon: example: {
    assertion = !(opensFirewall daemon) || any isReachable (listenOf daemon);
    message = ''
      services.panoseti.${daemon}.openFirewall is set, but settings.${daemon}.listen has no TCP
      address other hosts can reach (only loopback, unix:// or systemd: ones), so there is no
      port to open: add one such as "${example}", or set
      services.panoseti.${daemon}.openFirewall = false.
    '';
  };
  hashpipe = (section "daqdata").hashpipe or { };
  socketTemplate = hashpipe.socket_template or defaultSocketTemplate;
  hashpipeSocketPaths = map (
    dp: replaceStrings [ "{dp}" ] [ dp ] socketTemplate
  ) cfg.daqdata.hashpipeSockets;
  chips = (section "ublox").chips or [ ];

  renderedConfig = settingsFormat.generate "panoseti.yaml" cfg.settings;
  # The same check a daemon runs at start, run at build time: a bad setting fails
  # `nixos-rebuild` with the field and the fix instead of a unit that exits 78 on the node.
  checkedConfig =
    pkgs.runCommand "panoseti-config-checked.yaml"
      {
        nativeBuildInputs = [ cfg.package ];
        preferLocalBuild = true;
      }
      ''
        export HOME="$TMPDIR"
        panoseti config check --config ${renderedConfig}
        cp ${renderedConfig} "$out"
      '';

  # What every unit of the package is given on NixOS, on top of the package's own unit file.
  unitOverride = {
    overrideStrategy = "asDropin";
    restartTriggers = [ cfg.configFile ];
    environment.PANOSETI_CONFIG = configPath;
    serviceConfig = {
      User = cfg.user;
      Group = cfg.group;
    };
  };
in
{
  options.services.panoseti = {
    enable = mkEnableOption ''
      the PANOSETI appliance: the `panoseti` command, /etc/panoseti/panoseti.yaml, and the daemons
      chosen by `daqdata.enable` and `ublox.enable`. A head node that only runs clients enables this
      with both daemons off'';

    package = mkPackageOption pkgs "panoseti-appliance" { };

    settings = mkOption {
      type = settingsFormat.type;
      default = { };
      description = ''
        The appliance configuration, rendered to {file}`/etc/panoseti/panoseti.yaml` (the same keys
        as that file: `daqdata`, `hp_io`, `ublox`, `logging`, `observatory`; `panoseti config
        reference` prints them all). It is checked at build time with `panoseti config check`, so
        an unknown key or a bad value fails the build with the field and the fix. The options
        below fill `daqdata.listen`, `daqdata.hashpipe`, `hp_io.data_dir` and `ublox.listen` with
        defaults that a setting here overrides.
      '';
      example = literalExpression ''
        {
          hp_io.module_ids = [ 1 2 ];
          ublox.chips = [
            {
              uid = "DF03A241BC";
              position = { format = "LLH"; lat_deg = 37.3414; lon_deg = -121.6429; height_m = 1283.0; acc_m = 0.02; };
            }
          ];
          logging.level = "info";
        }
      '';
    };

    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Run `panoseti config check` on the rendered configuration at build time. Turn it off only
        to build for a package whose checks are newer than the configuration.
      '';
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      description = ''
        The rendered (and, with `checkConfig`, checked) configuration file that
        {file}`/etc/panoseti/panoseti.yaml` links to. The daemons restart when it changes.
      '';
    };

    user = mkOption {
      type = types.str;
      default = "panoseti";
      description = ''
        User the daemons run as. The default user is created; another one must exist.
      '';
    };

    group = mkOption {
      type = types.str;
      default = "panoseti";
      example = "hashpipe";
      description = ''
        Group of the daemons. It owns the Hashpipe sockets and {file}`/run/panoseti`: Hashpipe's
        user must be a member to write frames. The default group is created; another one must
        exist.
      '';
    };

    daqdata = {
      enable = mkOption {
        type = types.bool;
        default = true;
        example = false;
        description = ''
          Run DaqData: the Hashpipe sockets (panoseti-daqdata.socket, listening from boot) and the
          image service (panoseti-daqdata.service). Turn it off on a head node.
        '';
      };

      openFirewall = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Open the TCP ports of `settings.daqdata.listen` (50051 by default) so that astronomers'
          clients and the head node can stream images.
        '';
      };

      hashpipeSockets = mkOption {
        type = types.listOf (types.enum allDataProducts);
        default = allDataProducts;
        example = [
          "img16"
          "ph256"
        ];
        description = ''
          Data products whose Hashpipe socket (`/tmp/hashpipe_grpc.dp_<product>.sock`) the socket
          unit holds open from boot; also `settings.daqdata.hashpipe.data_products`.
        '';
      };

      dataDir = mkOption {
        type = types.str;
        default = "/mnt/panoseti";
        example = "/data/panoseti";
        description = ''
          The run directory root Hashpipe writes PFF files under (`settings.hp_io.data_dir`). The
          daemon only reads it.
        '';
      };
    };

    ublox = {
      enable = mkEnableOption ''
        UbloxControl for the ZED-F9T timing receiver: the udev rule starts
        panoseti-ubloxcontrol@ttyACMn.service when a receiver is plugged in and stops it when the
        receiver goes. Describe the receiver in `settings.ublox.chips`'';

      openFirewall = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Open the TCP ports of `settings.ublox.listen` (50052 by default).
        '';
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      services.panoseti.configFile = if cfg.checkConfig then checkedConfig else renderedConfig;

      environment.etc."panoseti/panoseti.yaml".source = cfg.configFile;
      environment.systemPackages = [ cfg.package ];

      assertions = [
        {
          assertion = !cfg.daqdata.enable || hasPrefix "/" cfg.daqdata.dataDir;
          message = ''
            services.panoseti.daqdata.dataDir must be an absolute path, not "${cfg.daqdata.dataDir}":
            give the run directory root, e.g. "/mnt/panoseti".
          '';
        }
        {
          assertion = !cfg.daqdata.enable || cfg.daqdata.hashpipeSockets != [ ];
          message = ''
            services.panoseti.daqdata.hashpipeSockets is empty, but panoseti-daqdata.service needs
            its socket unit to listen on at least one Hashpipe socket: list the data products
            Hashpipe writes (e.g. [ "img16" "ph256" ]), or set services.panoseti.daqdata.enable = false.
          '';
        }
        {
          assertion =
            !cfg.daqdata.enable || (hashpipe.data_products or cfg.daqdata.hashpipeSockets) == cfg.daqdata.hashpipeSockets;
          message = ''
            services.panoseti.settings.daqdata.hashpipe.data_products differs from
            services.panoseti.daqdata.hashpipeSockets, so the daemon would expect sockets the socket
            unit does not hold: set only services.panoseti.daqdata.hashpipeSockets.
          '';
        }
        (firewallAssertion "daqdata" "0.0.0.0:50051")
        (firewallAssertion "ublox" "0.0.0.0:50052")
        {
          assertion = !cfg.ublox.enable || chips != [ ];
          message = ''
            services.panoseti.ublox.enable is set, but settings.ublox.chips is empty, so
            UbloxControl has no receiver to initialise: add the receiver, e.g.
            settings.ublox.chips = [ { uid = "DF03A241BC"; position = { ... }; } ]
            (docs/nixos.md), or set services.panoseti.ublox.enable = false.
          '';
        }
      ]
      ++ imap0 (index: chip: {
        assertion = !cfg.ublox.enable || !(chip ? device);
        message = ''
          services.panoseti.settings.ublox.chips.${toString index}.device is set, but
          panoseti-ubloxcontrol@ttyACMn.service sees only its own receiver's /dev/ttyACMn (the udev
          rule passes it as ublox.device): remove device from that chip.
        '';
      }) chips;

      networking.firewall.allowedTCPPorts = openPorts "daqdata" ++ openPorts "ublox";

      users.users = mkIf (cfg.user == "panoseti") {
        panoseti = {
          isSystemUser = true;
          inherit (cfg) group;
          description = "PANOSETI appliance daemons";
        };
      };
      users.groups = mkIf (cfg.group == "panoseti") { panoseti = { }; };
    }

    (mkIf (cfg.daqdata.enable || cfg.ublox.enable) {
      systemd.packages = [ cfg.package ];
      # Written here rather than taken from the package's tmpfiles.d file, which names the
      # default user and group: these follow services.panoseti.user and .group.
      systemd.tmpfiles.rules = [
        "d /run/panoseti 0755 ${cfg.user} ${cfg.group} -"
      ]
      ++ map (path: "x ${path}") hashpipeSocketPaths;
    })

    (mkIf cfg.daqdata.enable {
      services.panoseti.settings = {
        daqdata = {
          listen = mkDefault [
            "0.0.0.0:50051"
            "unix:///run/panoseti/daqdata.sock"
          ];
          hashpipe.data_products = mkDefault cfg.daqdata.hashpipeSockets;
          hashpipe.socket_group = mkDefault cfg.group;
        };
        hp_io.data_dir = mkDefault cfg.daqdata.dataDir;
      };

      systemd.sockets.panoseti-daqdata = {
        overrideStrategy = "asDropin";
        wantedBy = [ "sockets.target" ];
        # The empty entry clears the package's four ListenStream= lines first.
        listenStreams = [ "" ] ++ hashpipeSocketPaths;
        socketConfig = {
          SocketUser = cfg.user;
          SocketGroup = cfg.group;
        };
      };

      systemd.services.panoseti-daqdata = unitOverride // {
        wantedBy = [ "multi-user.target" ];
        # A switch that changes the unit restarts it in place. By default NixOS would stop the
        # service and its socket and start only the socket, which empties the fd store and
        # closes every Hashpipe connection.
        stopIfChanged = false;
      };
    })

    (mkIf cfg.ublox.enable {
      services.panoseti.settings.ublox.listen = mkDefault [
        "0.0.0.0:50052"
        "unix:///run/panoseti/ublox.sock"
      ];

      # The rule tags each receiver for systemd, which starts one instance per tty.
      services.udev.packages = [ cfg.package ];
      systemd.services."panoseti-ubloxcontrol@" = unitOverride;
    })
  ]);
}
