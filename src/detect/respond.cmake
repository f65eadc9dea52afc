# The responses and notifications of the detector (src/detect/respond.c,
# notify.c; docs/detect-responses.md), added to the detector's library
# mg_detect. Included by src/detect/CMakeLists.txt (OPTIONAL).
find_package(PkgConfig REQUIRED)
# GLOBAL: mg_detect is a static library; its users (the CLI, the tests) are
# in other directories and must see the imported target too.
pkg_check_modules(MG_RESPOND REQUIRED IMPORTED_TARGET GLOBAL libcurl libmosquitto)
target_sources(mg_detect PRIVATE ${CMAKE_CURRENT_LIST_DIR}/respond.c ${CMAKE_CURRENT_LIST_DIR}/notify.c)
target_include_directories(mg_detect PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(mg_detect PUBLIC m2mguard_store m2mguard_text m2mguard_core
                                       PkgConfig::MG_RESPOND OpenSSL::Crypto)
if(TARGET m2mguard_ca)
  # REVOKE through the CA (mg_ca_open, mg_ca_revoke_owner: the CRL rewritten)
  target_link_libraries(mg_detect PUBLIC m2mguard_ca)
  target_compile_definitions(mg_detect PRIVATE MG_HAVE_CA=1)
endif()

if(MG_TESTS)
  # tests/detect/respond.sh drives the responder through this small program.
  add_executable(mg_respond_drive ${PROJECT_SOURCE_DIR}/tests/detect/respond_drive.c)
  target_include_directories(mg_respond_drive PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(mg_respond_drive PRIVATE mg_detect)
  # tests/CMakeLists.txt (read after this file) makes tests/unit/test_respond.c
  # a cmocka test linked with the core only: at the end of the top-level
  # directory, give it the detector's library, and register respond.sh.
  function(mg_respond_tests)
    if(TARGET test_respond)
      target_link_libraries(test_respond PRIVATE mg_detect)
      target_include_directories(test_respond PRIVATE ${PROJECT_SOURCE_DIR}/src/detect)
    endif()
    if(TARGET m2mguard)
      add_test(NAME detect_respond
               COMMAND bash ${PROJECT_SOURCE_DIR}/tests/detect/respond.sh $<TARGET_FILE:m2mguard>
                       $<TARGET_FILE:mg_respond_drive>)
      set_tests_properties(detect_respond PROPERTIES TIMEOUT 120
        ENVIRONMENT "MG_SOURCE_DIR=${PROJECT_SOURCE_DIR};PATH=/usr/sbin:$ENV{PATH}")
    endif()
  endfunction()
  cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL mg_respond_tests)
endif()
