# What every machine of the observatory shares: names on the observatory network, time zone, and the
# SSH access deploy.sh uses (`nixos-rebuild switch --target-host root@NODE`).
{
  networking.hosts = {
    "10.0.0.3" = [ "head" ];
    "10.0.0.60" = [ "daq1" ];
    "10.0.0.61" = [ "daq2" ];
  };

  time.timeZone = "UTC";

  services.openssh.enable = true;
  # The public keys of the operators who deploy (root logs in with a key only).
  users.users.root.openssh.authorizedKeys.keys = [ ];
}
