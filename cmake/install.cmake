# Installation (docs/packaging.md): the command, the data, and libm2mguard —
# a shared library (SONAME libm2mguard.so.<major>) and a static one made of
# the same objects — with its public headers and a pkg-config file.
#
# What libm2mguard is: the parts an external program (a backend, a device
# simulator, a test harness) calls through include/m2mguard/*.h without the
# daemons: the portable core (secured packets, TPDUs, the SMS and MQTT
# profiles, CBOR, COSE, SUIT), the device library, the OpenSSL crypto
# backend, the text helpers, the registry and key store (SQLite, PostgreSQL), the SMPP
# codec and session, key references (PEM, PKCS#11), the CA and the command
# policy. Not in it: the gateway, the EST server, the detector, the risk
# engine and the agent (programs, reached through `m2mguard`); their headers
# (detect.h, est.h, risk.h) are not installed.
include(GNUInstallDirs)

set(MG_LIB_PARTS m2mguard_core m2mguard_device m2mguard_crypto_openssl m2mguard_text
                 m2mguard_store m2mguard_smpp m2mguard_keyref m2mguard_ca m2mguard_policy)
set(MG_LIB_HEADERS common.h crypto.h ota.h tpdu.h sms.h mqtt_profile.h cbor.h cose.h suit.h
                   device.h text.h store.h smpp.h keyref.h ca.h policy.h)
set(MG_LIB_SOVERSION 0)

set(MG_LIB_OBJECTS "")
foreach(part ${MG_LIB_PARTS})
  list(APPEND MG_LIB_OBJECTS $<TARGET_OBJECTS:${part}>)
endforeach()
find_library(MG_YAML_LIB yaml REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(MG_LIB_P11KIT REQUIRED IMPORTED_TARGET p11-kit-1)
pkg_check_modules(MG_LIB_PQ REQUIRED IMPORTED_TARGET libpq)

# The objects are position independent (CMAKE_POSITION_INDEPENDENT_CODE).
add_library(m2mguard_shared SHARED ${MG_LIB_OBJECTS})
set_target_properties(m2mguard_shared PROPERTIES OUTPUT_NAME m2mguard
                      VERSION ${PROJECT_VERSION} SOVERSION ${MG_LIB_SOVERSION})
target_link_libraries(m2mguard_shared PRIVATE OpenSSL::Crypto SQLite::SQLite3 PkgConfig::MG_LIB_P11KIT PkgConfig::MG_LIB_PQ
                                              ${MG_YAML_LIB} Threads::Threads ${CMAKE_DL_LIBS})
if(MG_SANITIZE OR MG_FUZZ)
  # sanitizer builds test the programs; their runtime is not linked into shared
  # objects (--no-undefined would fail): the libraries are built on request only
  set_target_properties(m2mguard_shared PROPERTIES EXCLUDE_FROM_ALL TRUE)
else()
  target_link_options(m2mguard_shared PRIVATE -Wl,--no-undefined -Wl,--as-needed)
endif()
add_library(m2mguard_static STATIC ${MG_LIB_OBJECTS})
set_target_properties(m2mguard_static PROPERTIES OUTPUT_NAME m2mguard)
if(MG_SANITIZE OR MG_FUZZ)
  set_target_properties(m2mguard_static PROPERTIES EXCLUDE_FROM_ALL TRUE)
endif()
foreach(part ${MG_LIB_PARTS})
  add_dependencies(m2mguard_shared ${part})
  add_dependencies(m2mguard_static ${part})
endforeach()

configure_file(${PROJECT_SOURCE_DIR}/cmake/m2mguard.pc.in ${PROJECT_BINARY_DIR}/m2mguard.pc @ONLY)

install(TARGETS m2mguard RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS m2mguard_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_SKIP)
install(TARGETS m2mguard_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_ONLY)
install(TARGETS m2mguard_static ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
list(TRANSFORM MG_LIB_HEADERS PREPEND ${PROJECT_SOURCE_DIR}/include/m2mguard/)
install(FILES ${MG_LIB_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/m2mguard)
install(FILES ${PROJECT_BINARY_DIR}/m2mguard.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
