# m2mguard audit (issue 11 item 4): src/detect/audit.c, audit_risk.c.
#
# Included twice, and each part runs once (a global property remembers it):
#  - by src/detect/CMakeLists.txt (`include(... audit.cmake OPTIONAL)`): the
#    sources join the detector's library mg_detect;
#  - by the top-level CMakeLists.txt after the tests: when there is no
#    mg_detect (yet), a library of its own (mg_audit) that the command-line
#    tool links; then the unit test's libraries and the shell test.
# The audit needs the store, the analysis engine (risk) and OpenSSL.
get_property(_mg_audit_lib GLOBAL PROPERTY MG_AUDIT_LIB)
if(NOT _mg_audit_lib AND TARGET m2mguard_risk AND TARGET m2mguard_store)
  if(TARGET mg_detect)
    target_sources(mg_detect PRIVATE ${CMAKE_CURRENT_LIST_DIR}/audit.c
                                     ${CMAKE_CURRENT_LIST_DIR}/audit_risk.c)
    target_link_libraries(mg_detect PUBLIC m2mguard_risk m2mguard_store m2mguard_text
                                           OpenSSL::Crypto)
    set(_mg_audit_lib mg_detect)
  else()
    add_library(mg_audit STATIC ${CMAKE_CURRENT_LIST_DIR}/audit.c
                                ${CMAKE_CURRENT_LIST_DIR}/audit_risk.c)
    target_include_directories(mg_audit PUBLIC ${PROJECT_SOURCE_DIR}/include
                                               ${CMAKE_CURRENT_LIST_DIR})
    target_link_libraries(mg_audit PUBLIC m2mguard_risk m2mguard_store m2mguard_text
                                          OpenSSL::Crypto)
    set(_mg_audit_lib mg_audit)
  endif()
  set_property(GLOBAL PROPERTY MG_AUDIT_LIB ${_mg_audit_lib})
endif()

# The command-line tool (src/cli/cmd_audit.c) and its registration.
get_property(_mg_audit_cli GLOBAL PROPERTY MG_AUDIT_CLI)
if(_mg_audit_lib AND NOT _mg_audit_cli AND TARGET m2mguard)
  target_link_libraries(m2mguard PRIVATE ${_mg_audit_lib})
  target_include_directories(m2mguard PRIVATE ${PROJECT_SOURCE_DIR}/src/detect)
  target_compile_definitions(m2mguard PRIVATE MG_HAVE_AUDIT=1)
  set_property(GLOBAL PROPERTY MG_AUDIT_CLI 1)
endif()

# The tests: tests/unit/test_audit.c (made by tests/CMakeLists.txt's glob) and
# tests/detect/audit.sh.
get_property(_mg_audit_tests GLOBAL PROPERTY MG_AUDIT_TESTS)
if(_mg_audit_lib AND NOT _mg_audit_tests AND TARGET test_audit AND TARGET m2mguard)
  target_link_libraries(test_audit PRIVATE ${_mg_audit_lib} m2mguard_store m2mguard_risk)
  target_include_directories(test_audit PRIVATE ${PROJECT_SOURCE_DIR}/src/detect)
  target_compile_definitions(test_audit PRIVATE
    MG_AUDIT_CATALOGUE="${PROJECT_SOURCE_DIR}/data/risk")
  add_test(NAME detect_audit COMMAND bash ${PROJECT_SOURCE_DIR}/tests/detect/audit.sh
                                          $<TARGET_FILE:m2mguard>)
  set_tests_properties(detect_audit PROPERTIES TIMEOUT 300
    ENVIRONMENT "MG_SOURCE_DIR=${PROJECT_SOURCE_DIR};PATH=/usr/sbin:$ENV{PATH}")
  set_property(GLOBAL PROPERTY MG_AUDIT_TESTS 1)
endif()
