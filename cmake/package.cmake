# The Debian package strait-cni_<version>_amd64.deb (scripts/package; not part of the normal
# build: `cpack --config build/CPackConfig.cmake` after building strait-executables). It holds
# the component cni of cmake/install.cmake: every executable, the agents' units, the docs and
# conf/ as examples. Its version is the one the binaries carry (build/generated/version.txt,
# written at build time: cmake/package_config.cmake reads it when cpack runs).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME strait-cni)
set(CPACK_PACKAGE_VENDOR "Strait")
set(CPACK_PACKAGE_CONTACT "Strait maintainers <strait@example.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Strait CNI plugins for Kubernetes nodes")
set(CPACK_PACKAGE_DESCRIPTION
    "Strait's CNI plugins (macvlan, sriov, an overlay, bandwidth, IPAM) in /opt/cni/bin, cnitool, the overlay route agent's systemd unit and\nexample network configurations under /usr/share/doc/strait-cni/examples.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/")
set(CPACK_INSTALL_CMAKE_PROJECTS "${CMAKE_BINARY_DIR};${PROJECT_NAME};cni;/")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/strait")
# Depends from what the dynamically linked executables need (dpkg-shlibdeps), not a list kept
# by hand; the statically linked ones need nothing. libnftables is dlopen()ed by the overlay
# agents (overlay/nftables.h), which dpkg-shlibdeps cannot see: named here, shlibdeps' list
# is appended to it.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libnftables1")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Debug information stays in the build tree: the package carries stripped executables.
set(CPACK_STRIP_FILES ON)
set(CPACK_STRAIT_VERSION_FILE "${CMAKE_BINARY_DIR}/generated/version.txt")
set(CPACK_PROJECT_CONFIG_FILE "${PROJECT_SOURCE_DIR}/cmake/package_config.cmake")
set(CPACK_PACKAGE_DIRECTORY "${CMAKE_BINARY_DIR}/package")
include(CPack)
