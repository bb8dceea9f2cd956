# What evaluating one configuration gives, as plain data (`nix-instantiate --eval --strict
# --json`): the failed assertions and everything the module sets outside services.panoseti.
{
  lib,
  module,
}:

let
  inherit (import ./harness.nix {
    inherit lib;
    modules = [ module ];
  }) config;
  cfg = config.services.panoseti;
  names = map (package: package.name);
in
{
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  settings = cfg.settings;
  # The file /etc/panoseti/panoseti.yaml links to, and how it is made.
  configFile =
    if cfg.enable then
      {
        path = cfg.configFile.outPath;
        script = cfg.configFile.script or null;
        nativeBuildInputs = names (cfg.configFile.env.nativeBuildInputs or [ ]);
      }
    else
      null;
  etc = lib.mapAttrs (_: entry: entry.source) (config.environment.etc or { });
  systemPackages = names config.environment.systemPackages;
  systemdPackages = names config.systemd.packages;
  udevPackages = names config.services.udev.packages;
  services = config.systemd.services or { };
  sockets = config.systemd.sockets or { };
  tmpfiles = config.systemd.tmpfiles.rules;
  allowedTCPPorts = config.networking.firewall.allowedTCPPorts;
  users = config.users.users or { };
  groups = config.users.groups or { };
}
