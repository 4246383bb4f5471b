#!/usr/bin/env bash
# Builds and runs a package that depends on LSTMVision by version, as a user's would: a clone of this repository's
# HEAD, tagged 1.0.0, named by `.package(url:from:)`; its main.swift is the Swift code of the getting-started article
# (Sources/LSTMVision/LSTMVision.docc/GettingStarted.md), so the article is checked too. Then the API documentation
# is generated with swift-docc-plugin. Run by `make test`; CONSUMER_DIR keeps the work folder (default: a temp one).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${CONSUMER_DIR:-}" ]; then
    work="$CONSUMER_DIR"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi
article="$repo/Sources/LSTMVision/LSTMVision.docc/GettingStarted.md"
rm -rf "$work/LSTMVision" "$work/GettingStarted"
git clone -q "$repo" "$work/LSTMVision"
git -C "$work/LSTMVision" -c user.name=check -c user.email=check@localhost tag -a 1.0.0 -m "consumer check"
mkdir -p "$work/GettingStarted/Sources/GettingStarted"
cat > "$work/GettingStarted/Package.swift" <<MANIFEST
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "GettingStarted",
    dependencies: [.package(url: "file://$work/LSTMVision", from: "1.0.0")],
    targets: [.executableTarget(name: "GettingStarted",
                                dependencies: [.product(name: "LSTMVision", package: "LSTMVision")])]
)
MANIFEST
# Every ```swift block of the article, in order.
awk '/^```swift$/ { on = 1; next } /^```$/ { on = 0 } on' "$article" > "$work/GettingStarted/Sources/GettingStarted/main.swift"
cd "$work/GettingStarted"
echo "consumer: building $work/GettingStarted against LSTMVision 1.0.0 (a tagged clone of $(git -C "$repo" rev-parse --short HEAD))"
swift build -v > build.log 2>&1 || { tail -20 build.log; exit 1; }
python3 - Package.resolved <<'CHECK' || { echo "consumer: LSTMVision was not resolved at version 1.0.0"; exit 1; }
import json, sys
pins = json.load(open(sys.argv[1]))["pins"]
assert any(p["identity"] == "lstmvision" and p["state"].get("version") == "1.0.0" for p in pins)
CHECK
flags=$(grep -c -- "-target-cpu" build.log || true)
echo "consumer: built; compiler invocations with LSTMVision's -target-cpu flag: $flags"
swift run --skip-build GettingStarted "$work/LSTMVision/data/mnist" | tee run.log
grep -q "^test accuracy" run.log || { echo "consumer: no test accuracy printed"; exit 1; }
cd "$repo"
echo "docs: swift package generate-documentation (LSTMVision, LSTMVisionCore, LSTMVisionKernels, combined)"
swift package --allow-writing-to-directory "$work/docs" generate-documentation --target LSTMVision \
    --target LSTMVisionCore --target LSTMVisionKernels --enable-experimental-combined-documentation \
    --output-path "$work/docs" > "$work/docs.log" 2>&1 || { tail -20 "$work/docs.log"; exit 1; }
test -f "$work/docs/data/documentation/lstmvision/gettingstarted.json" \
    || { echo "docs: the getting-started article is missing from $work/docs"; exit 1; }
warnings=$(grep -c "warning:" "$work/docs.log" || true)
[ "$warnings" -eq 0 ] || { grep -A3 "warning:" "$work/docs.log" | head -20; exit 1; }
echo "docs: no warnings (make docs writes them to .build/docs)"
