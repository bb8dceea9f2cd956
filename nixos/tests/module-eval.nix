# checks.<system>.module-eval: every configuration of ./eval/cases.nix evaluates, and exactly the
# expected assertions fire. Needs nothing but nixpkgs' lib (the module is evaluated with a
# stand-in for pkgs); `pkgs` only wraps the verdict in a derivation.
{ lib, pkgs }:

let
  cases = import ./eval/cases.nix;
  verdict =
    name: case:
    let
      result = import ./eval/summary.nix {
        inherit lib;
        inherit (case) module;
      };
      fired = result.failedAssertions;
      missing = lib.filter (piece: !lib.any (lib.hasInfix piece) fired) case.fails;
      unexpected = lib.filter (message: !lib.any (piece: lib.hasInfix piece message) case.fails) fired;
    in
    lib.optional (missing != [ ] || unexpected != [ ]) (
      "${name}: missing ${builtins.toJSON missing}, unexpected ${builtins.toJSON unexpected}"
    );
  problems = lib.concatLists (lib.mapAttrsToList verdict cases);
in
if problems == [ ] then
  pkgs.runCommand "panoseti-module-eval" { } ''
    echo "${toString (lib.length (lib.attrNames cases))} configurations evaluated" > "$out"
  ''
else
  throw ("services.panoseti module evaluation:\n" + lib.concatStringsSep "\n" problems)
