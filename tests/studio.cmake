# The scripted GUI test (included from tests/CMakeLists.txt): krause-studio plays a script under
# Xvfb on freshly initialised mnist-tiny models, then studio_check verifies its state dumps and
# screenshots. Skips (exit 77) when xvfb-run is missing; the training part needs KRAUSE_DATA_DIR.
if(KRAUSE_BUILD_GUI)
    find_package(PkgConfig REQUIRED)
    pkg_check_modules(KRAUSE_STUDIO_STB REQUIRED IMPORTED_TARGET stb)
    add_executable(studio_check ${CMAKE_CURRENT_LIST_DIR}/studio/check.cpp)
    target_link_libraries(studio_check PRIVATE PkgConfig::KRAUSE_STUDIO_STB
                          nlohmann_json::nlohmann_json)

    set(KRAUSE_STUDIO_OUT ${CMAKE_CURRENT_BINARY_DIR}/studio)
    file(MAKE_DIRECTORY ${KRAUSE_STUDIO_OUT}/models)
    foreach(kind krause softmax linear)
        add_test(NAME StudioModel_${kind}
                 COMMAND $<TARGET_FILE:krause> init --preset mnist-tiny --attention ${kind}
                         --out ${KRAUSE_STUDIO_OUT}/models/${kind}.safetensors)
        set_tests_properties(StudioModel_${kind} PROPERTIES FIXTURES_SETUP studio_models)
    endforeach()
    add_test(NAME StudioModel_cifar
             COMMAND $<TARGET_FILE:krause> init --preset cifar10-small
                     --out ${KRAUSE_STUDIO_OUT}/models/cifar.safetensors)
    set_tests_properties(StudioModel_cifar PROPERTIES FIXTURES_SETUP studio_models)

    set(runner ${CMAKE_CURRENT_LIST_DIR}/studio/run_studio_test.sh)
    add_test(NAME StudioScript
             COMMAND bash ${runner} $<TARGET_FILE:krause-studio> $<TARGET_FILE:studio_check>
                     ${CMAKE_CURRENT_LIST_DIR}/studio/basic.txt
                     ${CMAKE_CURRENT_LIST_DIR}/studio/basic.expect ${KRAUSE_STUDIO_OUT}/basic)
    add_test(NAME StudioTrainScript
             COMMAND bash ${runner} $<TARGET_FILE:krause-studio> $<TARGET_FILE:studio_check>
                     ${CMAKE_CURRENT_LIST_DIR}/studio/train.txt
                     ${CMAKE_CURRENT_LIST_DIR}/studio/train.expect ${KRAUSE_STUDIO_OUT}/train
                     --needs-data)
    add_test(NAME StudioDynamicsScript
             COMMAND bash ${runner} $<TARGET_FILE:krause-studio> $<TARGET_FILE:studio_check>
                     ${CMAKE_CURRENT_LIST_DIR}/studio/dynamics.txt
                     ${CMAKE_CURRENT_LIST_DIR}/studio/dynamics.expect ${KRAUSE_STUDIO_OUT}/dynamics
                     --needs-data)
    set_tests_properties(StudioScript StudioTrainScript StudioDynamicsScript PROPERTIES
        FIXTURES_REQUIRED studio_models
        ENVIRONMENT "STUDIO_MODELS=${KRAUSE_STUDIO_OUT}/models"
        SKIP_RETURN_CODE 77
        TIMEOUT 900
        RUN_SERIAL TRUE)
endif()
