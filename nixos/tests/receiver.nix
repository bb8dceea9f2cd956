# The ZED-F9T of the tests: settings.ublox.chips entry for a receiver with this UID, surveyed at a
# fixed position (the emulator accepts any).
uid: {
  inherit uid;
  position = {
    format = "LLH";
    lat_deg = 37.3414;
    lon_deg = -121.6429;
    height_m = 1283.0;
    acc_m = 0.02;
  };
}
