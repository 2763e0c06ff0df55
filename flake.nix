# kubelab for Nix users: the same guest image as `kubelab image build`, and a dev shell.
#
# What is and is not verified (see docs/images.md, "Nix"):
# - CI parses this file (`nix-instantiate --parse`) and evaluates `lib.debSpecs` against
#   images/debian.lock (lab/tests/flake.rs), so the lock-to-fetch mapping is checked;
# - the derivations below are NOT built in CI (no nixpkgs checkout is reachable there).
#
# The image derivation fetches every locked .deb with `fetchurl` (sha256 from the lock),
# seeds kubelab's verified-package cache with them (`<cache>/debs/<sha256>.deb`) and runs the
# ordinary builder offline. Its hash equals a Debian host's build only when kubelabd and
# mksquashfs are byte-identical, which nixpkgs' toolchain does not promise; the contents
# (packages, modules, layout) are the same.
{
  description = "kubelab: a Kubernetes-style cluster in Rust and a reproducible QEMU lab (guest image and dev shell)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";

      # images/debian.lock -> one fetchurl argument set per package. Pure: needs no
      # nixpkgs, so CI can evaluate it. Packages only published by the security archive
      # (`pool/updates/...`) need `securityMirror` (a base URL) from the caller.
      debSpecs = { lockFile, securityMirror ? null }:
        let
          lock = builtins.fromTOML (builtins.readFile lockFile);
          isSecurity = p: builtins.match "pool/updates/.*" p.filename != null;
          base = p:
            if isSecurity p then
              (if securityMirror == null
               then throw "${p.name}: ${p.filename} is only in the security archive; pass securityMirror"
               else securityMirror + "/")
            else "mirror://debian/";
        in
        map (p: {
          inherit (p) name version sha256;
          url = base p + p.filename;
        }) lock.package;

      pkgs = nixpkgs.legacyPackages.${system};

      # The host CLI (image builder).
      kubelab = pkgs.rustPlatform.buildRustPackage {
        pname = "kubelab";
        version = "0.1.0";
        src = self;
        cargoLock.lockFile = ./Cargo.lock;
        cargoBuildFlags = [ "-p" "kubelab" ];
        nativeBuildInputs = [ pkgs.protobuf ];
        doCheck = false;
      };

      # The guest binary, static (musl here; glibc crt-static on Debian hosts).
      kubelabd = pkgs.pkgsStatic.rustPlatform.buildRustPackage {
        pname = "kubelabd";
        version = "0.1.0";
        src = self;
        cargoLock.lockFile = ./Cargo.lock;
        cargoBuildFlags = [ "-p" "kubelabd" ];
        nativeBuildInputs = [ pkgs.protobuf ];
        doCheck = false;
      };

      guestImage = { securityMirror ? null }:
        let
          debs = map
            (d: { inherit (d) sha256; file = pkgs.fetchurl { inherit (d) url sha256; }; })
            (debSpecs { lockFile = ./images/debian.lock; inherit securityMirror; });
        in
        pkgs.runCommand "kubelab-guest-image"
          {
            nativeBuildInputs = [ kubelab pkgs.dpkg pkgs.squashfsTools pkgs.xz ];
          }
          ''
            mkdir -p cache/debs
            ${pkgs.lib.concatMapStrings (d: "cp ${d.file} cache/debs/${d.sha256}.deb\n") debs}
            kubelab image build --repo ${self} --cache "$PWD/cache" \
              --kubelabd ${kubelabd}/bin/kubelabd
            mkdir -p $out
            cp -r cache/images/*/. $out/
          '';
    in
    {
      lib = { inherit debSpecs; };

      packages.${system} = {
        inherit kubelab kubelabd;
        guest-image = guestImage { };
        default = guestImage { };
      };

      devShells.${system}.default = pkgs.mkShell {
        packages = with pkgs; [
          cargo
          rustc
          clippy
          rustfmt
          cargo-nextest
          qemu
          iproute2
          squashfsTools
          xz
          dpkg
          cpio
          openssh
          tcpdump
          etcd
          protobuf
        ];
      };
    };
}
