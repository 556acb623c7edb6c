#!/bin/sh
# Debian packages the integration tests start directly (no systemd, no daemons left running):
# prometheus (prometheus, promtool), prometheus-alertmanager (alertmanager, amtool), and
# chromium with chromium-driver for the dashboard's browser tests (driven by Playwright), with
# fonts-noto-cjk so that the page's Chinese headlines are drawn in a real CJK font, and
# Java 17 with Maven, which assemble and run Apache Kafka for the broker tests (tests/kafka.py).
set -eu
packages="prometheus prometheus-alertmanager chromium chromium-driver fonts-noto-cjk"
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
if [ -z "$java_major" ] || [ "$java_major" -lt 17 ]; then
  packages="$packages openjdk-17-jre-headless"
fi
command -v mvn >/dev/null || packages="$packages maven"
if command -v prometheus >/dev/null && command -v promtool >/dev/null \
   && command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null \
   && command -v chromium >/dev/null && command -v chromedriver >/dev/null \
   && [ -d /usr/share/fonts/opentype/noto ] && ls /usr/share/fonts/opentype/noto | grep -q CJK \
   && [ "$packages" = "prometheus prometheus-alertmanager chromium chromium-driver fonts-noto-cjk" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
# Keep the packages' install scripts from starting services: the tests start the binaries themselves.
created=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  created=1
fi
status=0
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  $packages >/dev/null || status=$?
if [ "$created" = 1 ]; then
  $SUDO rm -f /usr/sbin/policy-rc.d
fi
exit $status
