# Install rules (cmake --install, scripts/install, and the Debian package, which CPack stages
# through the same rules). Every path is relative to the install prefix, which defaults to /:
# `cmake --install build --prefix /tmp/root` lays out /tmp/root/opt/cni/bin and so on.
#
# Components:
#   cni   every executable registered in STRAIT_EXECUTABLES (the plugins into the CNI bin
#         dir, the runtime-side tools marked STRAIT_TOOL into the tool dir), the systemd units
#         of conf/systemd, the READMEs, and conf/ as examples under the doc dir;
#   netd  the example conflists of conf/net.d copied into the CNI conf dir, each only when no
#         file of that name is there: an operator's edited config is never overwritten. The
#         Debian package leaves this component out (a package that drops networks into
#         /etc/cni/net.d changes a node's default network: the runtime takes the first file).
if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT)
  set(CMAKE_INSTALL_PREFIX "/" CACHE PATH "Install prefix" FORCE)
endif()
set(STRAIT_INSTALL_CNI_BIN_DIR "opt/cni/bin" CACHE STRING
    "Where the plugin executables go (the runtime's CNI_PATH), relative to the prefix")
set(STRAIT_INSTALL_CNI_CONF_DIR "etc/cni/net.d" CACHE STRING
    "Where the example conflists go (never over an existing file), relative to the prefix")
set(STRAIT_INSTALL_TOOL_DIR "usr/bin" CACHE STRING
    "Where the runtime-side tools (cnitool) go, relative to the prefix")
set(STRAIT_INSTALL_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where the systemd units of the node agents go, relative to the prefix")
set(STRAIT_INSTALL_DOC_DIR "usr/share/doc/strait-cni" CACHE STRING
    "Where the READMEs and the conf/ examples go, relative to the prefix")

get_property(strait_install_executables GLOBAL PROPERTY STRAIT_EXECUTABLES)
foreach(exe IN LISTS strait_install_executables)
  get_target_property(tool ${exe} STRAIT_TOOL)
  if(tool)
    install(TARGETS ${exe} RUNTIME DESTINATION ${STRAIT_INSTALL_TOOL_DIR} COMPONENT cni)
  else()
    install(TARGETS ${exe} RUNTIME DESTINATION ${STRAIT_INSTALL_CNI_BIN_DIR} COMPONENT cni)
  endif()
endforeach()
# Every executable at once: scripts/install, scripts/package and scripts/demo build this.
add_custom_target(strait-executables DEPENDS ${strait_install_executables})

file(GLOB strait_units CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/conf/systemd/*.service)
install(FILES ${strait_units} DESTINATION ${STRAIT_INSTALL_UNIT_DIR} COMPONENT cni)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/conf/ DESTINATION ${STRAIT_INSTALL_DOC_DIR}/examples
        COMPONENT cni)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${STRAIT_INSTALL_DOC_DIR} COMPONENT cni)
file(GLOB strait_docs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${strait_docs} DESTINATION ${STRAIT_INSTALL_DOC_DIR}/docs COMPONENT cni)
file(GLOB strait_readmes CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}
     ${PROJECT_SOURCE_DIR}/plugins/*/README.md ${PROJECT_SOURCE_DIR}/cnitool/README.md)
foreach(readme IN LISTS strait_readmes)
  get_filename_component(dir ${readme} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/${readme} DESTINATION ${STRAIT_INSTALL_DOC_DIR}/${dir}
          COMPONENT cni)
endforeach()

file(GLOB strait_conflists CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/conf/net.d/*.conflist)
foreach(conflist IN LISTS strait_conflists)
  install(CODE "set(STRAIT_ONCE_SOURCE \"${conflist}\")
set(STRAIT_ONCE_DESTINATION \"${STRAIT_INSTALL_CNI_CONF_DIR}\")
include(\"${PROJECT_SOURCE_DIR}/cmake/install_once.cmake\")" COMPONENT netd)
endforeach()
