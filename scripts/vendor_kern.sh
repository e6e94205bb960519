#!/usr/bin/env bash
# Vendor the KERN UX design system (@kern-ux/native) as static files.
#
# Copies ONLY dist/kern.min.css and the licence text (EUPL-1.2) from the npm
# package into shared/static/vendor/kern/ and writes VENDORED.txt with the
# package name, version, npm integrity and the SHA-256 of every vendored file.
# Fonts are deliberately NOT vendored: app.css sets a system font stack.
#
# Usage:  scripts/vendor_kern.sh            (re-vendors the pinned version)
#         KERN_VERSION=2.7.3 scripts/vendor_kern.sh   (to upgrade deliberately)
# Verify: cd shared/static/vendor/kern && grep -E '^[0-9a-f]{64}  ' VENDORED.txt | sha256sum -c
#
# Needs: npm (talks to the npm registry only), tar, sha256sum.
set -euo pipefail

PKG="@kern-ux/native"
VERSION="${KERN_VERSION:-2.7.2}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$repo_root/shared/static/vendor/kern"

for tool in npm tar sha256sum node; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: '$tool' not found" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "Fetching $PKG@$VERSION from the npm registry ..."
(cd "$tmp" && npm pack --silent --json "$PKG@$VERSION" >pack.json)

tarball="$(cd "$tmp" && node -e 'const p=require("./pack.json")[0]; process.stdout.write(p.filename)')"
integrity="$(cd "$tmp" && node -e 'const p=require("./pack.json")[0]; process.stdout.write(p.integrity)')"
[ -f "$tmp/$tarball" ] || { echo "error: npm pack did not produce $tarball" >&2; exit 1; }

mkdir "$tmp/x"
tar -xzf "$tmp/$tarball" -C "$tmp/x"
pkgdir="$tmp/x/package"

# Sanity: the tarball really is the requested package and version.
got="$(node -e 'const p=require(process.argv[1]); process.stdout.write(p.name+"@"+p.version)' "$pkgdir/package.json")"
[ "$got" = "$PKG@$VERSION" ] || { echo "error: tarball contains $got, expected $PKG@$VERSION" >&2; exit 1; }
license_id="$(node -e 'process.stdout.write(String(require(process.argv[1]).license||"unknown"))' "$pkgdir/package.json")"

css="$pkgdir/dist/kern.min.css"
[ -f "$css" ] || { echo "error: dist/kern.min.css missing in package" >&2; exit 1; }

# Licence file: whatever the package ships at its root (LICENSE.md in 2.7.x).
license_file=""
for cand in LICENSE.md LICENSE LICENSE.txt LICENCE.md LICENCE LICENCE.txt EUPL-1.2.txt; do
    if [ -f "$pkgdir/$cand" ]; then license_file="$cand"; break; fi
done
[ -n "$license_file" ] || { echo "error: no licence file found in package root" >&2; exit 1; }

# Guard: we ship the CSS without fonts or other assets, so it must not pull in
# anything from outside (no @import, no @font-face, only data: URIs in url()).
if grep -q '@import' "$css"; then
    echo "error: kern.min.css contains @import; review before vendoring" >&2; exit 1
fi
if grep -q '@font-face' "$css"; then
    echo "error: kern.min.css now contains @font-face rules; fonts are not vendored," \
         "make sure app.css overrides the font-family so they are never used" >&2; exit 1
fi
external_urls="$(grep -o 'url([^)]*)' "$css" | grep -v -E '^url\(["'\'']?data:' || true)"
if [ -n "$external_urls" ]; then
    echo "error: kern.min.css references external files that are not vendored:" >&2
    echo "$external_urls" | sort -u >&2
    exit 1
fi

# Replace the vendored directory's content with exactly these files.
mkdir -p "$dest"
find "$dest" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
cp "$css" "$dest/kern.min.css"
cp "$pkgdir/$license_file" "$dest/$license_file"
chmod 0644 "$dest/kern.min.css" "$dest/$license_file"

{
    echo "# Vendored by scripts/vendor_kern.sh -- do not edit these files by hand."
    echo "package: $PKG"
    echo "version: $VERSION"
    echo "license: $license_id ($license_file)"
    echo "npm-integrity: $integrity"
    echo "files (from the package): dist/kern.min.css -> kern.min.css, $license_file -> $license_file"
    echo "not vendored: fonts (dist/fonts/), kern.css, kern-grid*.css, kern-utilities*.css, js, scss sources"
    echo "# sha256sum format; verify with: grep -E '^[0-9a-f]{64}  ' VENDORED.txt | sha256sum -c"
    (cd "$dest" && sha256sum kern.min.css "$license_file")
} >"$dest/VENDORED.txt"

echo "Vendored $PKG@$VERSION into ${dest#"$repo_root"/}:"
(cd "$dest" && ls -l)
