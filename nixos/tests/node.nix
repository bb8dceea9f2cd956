# One DAQ node as a NixOS VM, configured through services.panoseti only
# (`nix build .#checks.x86_64-linux.vm-node`). The steps and checks are those the system tests run
# under a real systemd on Debian (tests/system/scenarios/daqdata_activation.py, daqdata_restart.py,
# daqdata_watchdog.py and tests/system/payload/vm/ublox_udev.py), here against the units, the udev
# rule and the configuration as NixOS installs them:
# 1. the socket unit holds the four Hashpipe sockets (group panoseti, mode 0660);
# 2. a Hashpipe producer (`panoseti sim --mode uds`, as a member of group panoseti) starts the
#    stopped daemon through them, and the bundled client streams its images;
# 3. server reflection lists the services and methods (grpcurl, and `panoseti daq reflect`);
# 4. `systemctl restart panoseti-daqdata` with the producer running: a client left streaming
#    carries on with newer images, and the producer's connections are never closed;
# 5. switching to a changed configuration (what `nixos-rebuild switch` does) restarts DaqData with
#    the new settings, and again the producer's connections are never closed;
# 6. SIGSTOP: the watchdog kills the daemon, systemd restarts it, the stream works again;
# 7. a ZED-F9T (`panoseti emulate-f9t` behind a USB gadget that enumerates as 1546:01a9) plugged
#    in: udev starts panoseti-ubloxcontrol@ttyACM0, which initialises the receiver from
#    services.panoseti.settings (init_on_start) and streams its messages; unplugged, it stops.
{ pkgs, ... }:

let
  # Not the emulator's default UID: the daemon's success proves it read this receiver's UID.
  uid = "C0FFEE1234";
  # A configfs USB gadget on dummy_hcd that enumerates like the receiver (stdlib python).
  gadget = "${pkgs.python3.interpreter} ${../../tests/system/payload/vm/usbgadget.py}";
in
{
  name = "panoseti-node";

  nodes.daq = {
    imports = [ ../module.nix ];

    services.panoseti = {
      enable = true;
      ublox.enable = true;
      settings.ublox = {
        init_on_start = true;
        chips = [ (import ./receiver.nix uid) ];
        # The messages the capture below reads, once per navigation epoch.
        cfg_key_settings = [
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

    # The account Hashpipe runs under: a member of group panoseti, which owns its sockets.
    users.users.hashpipe = {
      isSystemUser = true;
      group = "hashpipe";
      extraGroups = [ "panoseti" ];
    };
    users.groups.hashpipe = { };

    # The same node with one setting changed, to switch to as `nixos-rebuild switch` would.
    specialisation.reconfigured.configuration = {
      services.panoseti.settings.daqdata.max_concurrent_rpcs = 50;
    };

    environment.systemPackages = [ pkgs.grpcurl ];
    virtualisation.memorySize = 1536;
  };

  testScript = ''
    import json
    import re

    UID = "${uid}"
    GADGET = "${gadget}"
    SERVICE = "panoseti-daqdata.service"
    SOCKET = "panoseti-daqdata.socket"
    UBLOX = "panoseti-ubloxcontrol@ttyACM0.service"
    DAQ_UNIX = "unix:///run/panoseti/daqdata.sock"
    WATCHED = "/var/log/watcher.jsonl"


    def prop(unit: str, name: str) -> str:
        return daq.succeed(f"systemctl show -P {name} {unit}").strip()


    def images(count: int) -> list[dict]:
        """The first `count` images of a stream through the daemon's unix socket."""
        out = daq.succeed(
            f"panoseti daq --host {DAQ_UNIX} stream --json --count {count} --refresh-period 0.05",
            timeout=120,
        )
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


    def producer_status() -> list[str]:
        """The producer's status lines (cumulative counters per data product, one a second)."""
        out = daq.succeed("journalctl -u hashpipe-sim -o cat --no-pager")
        return [line for line in out.splitlines() if line.startswith("[")]


    def producer_never_reconnected() -> None:
        """One connection per data product since the producer started, none of them lost, as a
        status line printed after this call began says."""
        printed = len(producer_status())
        retry(lambda _last_try: len(producer_status()) > printed, 60)
        status = producer_status()[-1]
        t.assertEqual(re.findall(r"connects=(\d+)", status), ["1", "1"], status)
        t.assertNotIn("send_errors", status)
        t.assertNotIn("idle_reconnects", status)


    def newest_stamp() -> float:
        """The newest image time (the producer's send time) the client left streaming printed."""
        # The last element is empty, or a line still being written.
        lines = daq.succeed(f"tail -n 20 {WATCHED}").split("\n")[:-1]
        parsed = [json.loads(line) for line in lines]
        stamps = [image["wr_unix_timestamp"] or image["pkt_unix_timestamp"] for image in parsed]
        return max((float(stamp) for stamp in stamps if stamp), default=0.0)


    daq.wait_for_unit("multi-user.target")

    with subtest("the socket unit holds the Hashpipe sockets, group panoseti, mode 0660"):
        daq.wait_for_unit(SOCKET)
        listening = daq.succeed("ss -xlnH")
        for dp in ("img8", "img16", "ph256", "ph1024"):
            path = f"/tmp/hashpipe_grpc.dp_{dp}.sock"
            t.assertIn(path, listening)
            t.assertEqual(daq.succeed(f"stat -c '%a %G' {path}").strip(), "660 panoseti")

    with subtest("a Hashpipe producer's first connection starts the stopped daemon"):
        daq.wait_for_unit(SERVICE)  # wanted by multi-user.target
        daq.succeed(f"systemctl stop {SERVICE}")
        t.assertEqual(prop(SERVICE, "ActiveState"), "inactive")
        t.assertEqual(prop(SOCKET, "ActiveState"), "active")
        daq.succeed(
            "systemd-run --unit=hashpipe-sim --property=User=hashpipe"
            " panoseti sim --mode uds --module-ids 7 --rate 10 --status-interval 1"
        )
        daq.wait_until_succeeds(f"systemctl is-active {SERVICE}", timeout=120)
        daq.wait_until_succeeds(
            f"systemctl show -P StatusText {SERVICE} | grep -q '2 Hashpipe connections'",
            timeout=60,
        )
        pid = prop(SERVICE, "MainPID")
        t.assertEqual(daq.succeed(f"ps -o user= -p {pid}").strip(), "panoseti")

    with subtest("the bundled client streams the producer's images"):
        got = images(20)
        t.assertEqual(len(got), 20)
        t.assertEqual({image["module_id"] for image in got}, {7})
        t.assertEqual({image["dp"] for image in got}, {"img16", "ph256"})

    with subtest("server reflection lists the services and DaqData's methods"):
        daq.wait_for_open_port(50051)
        services = daq.succeed("grpcurl -plaintext localhost:50051 list").split()
        t.assertIn("daqdata.DaqData", services)
        t.assertIn("grpc.health.v1.Health", services)
        t.assertTrue(any(s.startswith("grpc.reflection.") for s in services), services)
        methods = daq.succeed("grpcurl -plaintext localhost:50051 list daqdata.DaqData").split()
        t.assertEqual(
            methods,
            [
                "daqdata.DaqData.InitHpIo",
                "daqdata.DaqData.Ping",
                "daqdata.DaqData.StreamImages",
                "daqdata.DaqData.UploadImages",
            ],
        )
        pong = daq.succeed("grpcurl -plaintext -unix /run/panoseti/daqdata.sock daqdata.DaqData/Ping")
        t.assertEqual(json.loads(pong), {})
        t.assertIn("StreamImages", daq.succeed("panoseti daq --host localhost reflect"))

    with subtest("systemctl restart with the producer running: the stream resumes, nothing reconnects"):
        daq.succeed(
            f"systemd-run --unit=watcher --property=StandardOutput=append:{WATCHED}"
            " --property=StandardError=journal"
            f" panoseti daq --host {DAQ_UNIX} stream --json --refresh-period 0.1"
        )
        daq.wait_until_succeeds(f"test $(wc -l < {WATCHED}) -ge 10", timeout=120)
        pid = prop(SERVICE, "MainPID")
        daq.succeed(f"systemctl restart {SERVICE}")
        t.assertNotEqual(prop(SERVICE, "MainPID"), pid)
        t.assertEqual(prop(SERVICE, "ActiveState"), "active")
        restarted = float(daq.succeed("date +%s.%N"))
        # Images sent after the restart returned reach the client only through the new daemon.
        retry(lambda _last_try: newest_stamp() > restarted, 120)
        t.assertEqual(prop("watcher.service", "ActiveState"), "active")
        daq.wait_until_succeeds(
            f"test $(systemctl show -P NFileDescriptorStore {SERVICE}) = 2", timeout=60
        )
        producer_never_reconnected()

    with subtest("switching to a changed configuration restarts DaqData, Hashpipe stays connected"):
        pid = prop(SERVICE, "MainPID")
        daq.succeed("/run/booted-system/specialisation/reconfigured/bin/switch-to-configuration test")
        t.assertIn("daqdata.max_concurrent_rpcs = 50", daq.succeed("panoseti config show"))
        daq.wait_until_succeeds(f"systemctl is-active {SERVICE}", timeout=120)
        t.assertNotEqual(prop(SERVICE, "MainPID"), pid)
        t.assertEqual(prop(SOCKET, "ActiveState"), "active")
        switched = float(daq.succeed("date +%s.%N"))
        retry(lambda _last_try: newest_stamp() > switched, 120)
        daq.wait_until_succeeds(
            f"test $(systemctl show -P NFileDescriptorStore {SERVICE}) = 2", timeout=60
        )
        producer_never_reconnected()

    with subtest("SIGSTOP: the watchdog kills the daemon and systemd restarts it"):
        t.assertEqual(prop(SERVICE, "NRestarts"), "0")
        pid = prop(SERVICE, "MainPID")
        daq.succeed(f"kill -STOP {pid}")
        daq.wait_until_succeeds(
            f"test $(systemctl show -P MainPID {SERVICE}) != {pid} && systemctl is-active {SERVICE}",
            timeout=120,
        )
        t.assertEqual(prop(SERVICE, "NRestarts"), "1")
        said = daq.succeed(f"journalctl -u {SERVICE} -o cat --no-pager")
        t.assertIn("Watchdog timeout", said)
        t.assertIn("Failed with result 'watchdog'", said)
        t.assertEqual({image["module_id"] for image in images(5)}, {7})
        producer_never_reconnected()

    with subtest("a receiver plugged in starts UbloxControl, which initialises it and streams"):
        daq.succeed(f"{GADGET} create")
        gadget_tty = daq.succeed(f"{GADGET} status").split("gadget_tty=")[1].split()[0]
        daq.succeed(
            f"systemd-run --unit=f9t-emulator panoseti emulate-f9t --tty {gadget_tty} --uid {UID}"
        )
        daq.wait_until_succeeds(
            f"journalctl -u f9t-emulator -o cat | grep -qx 'device: {gadget_tty}'", timeout=120
        )
        daq.succeed(f"{GADGET} bind")
        daq.wait_until_succeeds(f"systemctl is-active {UBLOX}", timeout=120)
        t.assertEqual(daq.succeed("readlink -f /dev/ublox-f9t").strip(), "/dev/ttyACM0")
        t.assertEqual(daq.succeed("stat -c '%G %a' /dev/ttyACM0").strip(), "dialout 660")
        t.assertIn("ID_MM_DEVICE_IGNORE=1", daq.succeed("udevadm info -q property /dev/ttyACM0"))
        daq.wait_until_succeeds(
            f"systemctl show -P StatusText {UBLOX} | grep -q 'receiver ready'", timeout=120
        )
        t.assertIn(f"UID {UID}", prop(UBLOX, "StatusText"))
        out = daq.succeed(
            "panoseti ublox capture --host unix:///run/panoseti/ublox.sock --json --duration 10"
            " TIM-TP NAV-TIMEUTC",
            timeout=120,
        )
        messages = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        for name in ("TIM-TP", "NAV-TIMEUTC"):
            distinct = {m["payload"] for m in messages if m["name"] == name}
            t.assertGreaterEqual(len(distinct), 3, f"{name}: {len(distinct)} distinct frames")
        t.assertEqual(prop(UBLOX, "NRestarts"), "0")

    with subtest("unplugging the receiver stops its UbloxControl"):
        daq.succeed(f"{GADGET} unbind")
        daq.wait_until_fails(f"systemctl is-active {UBLOX}", timeout=120)
        daq.fail("test -e /dev/ublox-f9t")
  '';
}
