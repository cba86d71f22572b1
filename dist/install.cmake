# install.cmake: what `cmake --install` puts where (GNUInstallDirs, all
# prefix-relative, so --prefix /usr and /usr/local both work), and the
# Debian package CPack builds from it (`cpack -G DEB` in the build tree).
#
#   bin/pathwise                                 the program
#   share/pathwise/scripts/                      the default protocol (found
#                                                beside the binary, cli/locate.h)
#   share/pathwise/plugins/                      the example local-rules plugins
#   share/pathwise/schemas/                      JSON Schemas of the outputs
#   share/man/man1/pathwise*.1.gz                  from --help, by help2man
#   share/bash-completion/completions/pathwise
#   lib/systemd/system/pathwise.{service,socket}
#   lib/sysusers.d/pathwise.conf, lib/tmpfiles.d/pathwise.conf
#   share/doc/pathwise/                          README, LICENSE, NEWS, examples
#   /etc/logrotate.d/pathwise                    (sysconfdir: /etc for /usr)
#
# The unit files name the binary by its full path, so configure with the
# prefix you install to (cmake -DCMAKE_INSTALL_PREFIX=/usr); for a trial run
# install under DESTDIR (DESTDIR=/tmp/x cmake --install build).

install(TARGETS pathwise RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES scripts/mrc_second_line.lua scripts/README.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/pathwise/scripts)
install(DIRECTORY plugins/ DESTINATION ${CMAKE_INSTALL_DATADIR}/pathwise/plugins
        FILES_MATCHING PATTERN "*.lua" PATTERN "*.md")
install(DIRECTORY schemas/ DESTINATION ${CMAKE_INSTALL_DATADIR}/pathwise/schemas
        FILES_MATCHING PATTERN "*.json")
if(EXISTS ${PW_SOURCE_DIR}/docs/schema/facts.schema.json)   # the input's schema (facts model)
  install(FILES docs/schema/facts.schema.json DESTINATION ${CMAKE_INSTALL_DATADIR}/pathwise/schemas)
endif()
install(FILES completion/pathwise.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME pathwise)
install(FILES README.md LICENSE NEWS.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME copyright)
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
        PATTERN "cohort.jsonl" EXCLUDE PATTERN "__pycache__" EXCLUDE)

# systemd: the unit names the installed binary; users, state and log
# directories come from sysusers.d and tmpfiles.d.
set(PW_SYSTEMD_DIR lib/systemd/system CACHE STRING "systemd unit directory, relative to the prefix")
configure_file(dist/systemd/pathwise.service.in ${CMAKE_BINARY_DIR}/dist/pathwise.service @ONLY)
configure_file(dist/systemd/pathwise.socket.in ${CMAKE_BINARY_DIR}/dist/pathwise.socket @ONLY)
configure_file(dist/logrotate/pathwise.in ${CMAKE_BINARY_DIR}/dist/pathwise.logrotate @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/dist/pathwise.service ${CMAKE_BINARY_DIR}/dist/pathwise.socket
        DESTINATION ${PW_SYSTEMD_DIR})
install(FILES dist/systemd/pathwise.sysusers DESTINATION lib/sysusers.d RENAME pathwise.conf)
install(FILES dist/systemd/pathwise.tmpfiles DESTINATION lib/tmpfiles.d RENAME pathwise.conf)
install(FILES ${CMAKE_BINARY_DIR}/dist/pathwise.logrotate
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/logrotate.d RENAME pathwise)

# Man pages: generated from each command's --help by help2man (Debian
# package help2man), so the page and the help never disagree. Without
# help2man the build goes on and installs no pages.
find_program(HELP2MAN help2man)
if(HELP2MAN)
  set(PW_MAN_PAGES)
  set(PW_MAN_CMDS "pathwise:guideline-based treatment recommendations with reasons and citations"
    "eval:evaluate one patient's facts (JSON) with a protocol"
    "facts:the facts a FHIR R4 Bundle gives, with their sources"
    "check:load a protocol in the sandbox and run its example cases"
    "rules:list the safety rules no protocol can switch off"
    "serve:serve evaluations over a local Unix socket (JSON-RPC) and CDS Hooks over HTTP"
    "client:send facts or JSON-RPC lines to a running pathwise serve"
    "batch:evaluate a cohort (JSON lines in, result lines out) on all cores"
    "cohort:generate a reproducible synthetic cohort (JSON lines)"
    "diff:compare two protocols over a cohort: what changes, for whom")
  foreach(entry ${PW_MAN_CMDS})
    string(REGEX REPLACE ":.*" "" cmd "${entry}")
    string(REGEX REPLACE "^[^:]*:" "" desc "${entry}")
    if(cmd STREQUAL "pathwise")
      set(page pathwise)
      set(sub "")
    else()
      set(page pathwise-${cmd})
      set(sub ${cmd})
    endif()
    add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/man/${page}.1 ${CMAKE_BINARY_DIR}/man/${page}.1.gz
      COMMAND ${CMAKE_COMMAND} -DPATHWISE=$<TARGET_FILE:pathwise> -DSUB=${sub} -DPAGE=${page}
              "-DDESC=${desc}" -DHELP2MAN=${HELP2MAN} -DVERSION=${PROJECT_VERSION}
              -DOUT=${CMAKE_BINARY_DIR}/man -DSRC=${PW_SOURCE_DIR} -P ${PW_SOURCE_DIR}/dist/man.cmake
      DEPENDS pathwise ${PW_SOURCE_DIR}/dist/man.cmake ${PW_SOURCE_DIR}/dist/man/pathwise.h2m
              ${PW_SOURCE_DIR}/dist/man/command.h2m ${PW_SOURCE_DIR}/dist/man/pathwise-serve.h2m
      COMMENT "help2man ${page}.1" VERBATIM)
    list(APPEND PW_MAN_PAGES ${CMAKE_BINARY_DIR}/man/${page}.1.gz)
  endforeach()
  add_custom_target(man ALL DEPENDS ${PW_MAN_PAGES})
  install(FILES ${PW_MAN_PAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  message(STATUS "help2man not found: no man pages (apt-get install help2man)")
endif()

# The Debian package. Dependencies come from dpkg-shlibdeps on the binary:
# liblua5.4-0, libuv1, lua-cjson (it ships liblua5.4-cjson.so.0), libc6.
set(CPACK_PACKAGE_NAME pathwise)
set(CPACK_PACKAGE_VENDOR "pathwise authors")
set(CPACK_PACKAGE_CONTACT "pathwise maintainers <pathwise@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "guideline-based clinical decision engine (C, Lua 5.4 protocols)")
set(CPACK_PACKAGE_DESCRIPTION "pathwise turns a patient's facts into a guideline-based treatment
recommendation, with the reasons and citations behind every line. Protocols
are Lua 5.4 scripts run in a sandbox; the facts model and the safety rules
are in C. Includes a JSON-RPC server for systemd (pathwise serve).")
set(CPACK_RESOURCE_FILE_LICENSE ${PW_SOURCE_DIR}/LICENSE)
# The package installs where the build was configured to (the unit files
# name the binary by its full path): configure with -DCMAKE_INSTALL_PREFIX=/usr.
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/pathwise")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PW_SOURCE_DIR}/dist/debian/postinst ${PW_SOURCE_DIR}/dist/debian/prerm
  ${PW_SOURCE_DIR}/dist/debian/postrm ${PW_SOURCE_DIR}/dist/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
