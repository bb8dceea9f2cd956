#!/usr/bin/env bash
# Deploy the fleet of this flake: each node's system is built on this machine (a configuration
# that `panoseti config check` refuses fails here, before that node is touched), copied to the node
# over SSH and switched to there.
#
#   ./deploy.sh               every node in nixosConfigurations, one after the other
#   ./deploy.sh daq2 head     only these
#
# A node is reached as root@NAME (site.nix: networking.hosts and root's authorized keys).
set -euo pipefail
cd "$(dirname "$0")"

if [ "$#" -eq 0 ]; then
  mapfile -t nodes < <(nix eval --raw .#nixosConfigurations \
    --apply 'configs: builtins.concatStringsSep "\n" (builtins.attrNames configs)')
  set -- "${nodes[@]}"
fi

for node in "$@"; do
  echo "== $node"
  nixos-rebuild switch --flake ".#$node" --target-host "root@$node"
done
