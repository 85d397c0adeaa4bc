# The scripted GUI tests (included from tests/CMakeLists.txt): krause-studio plays a script under
# Xvfb on freshly initialised mnist-tiny models and the bundled ones, then studio_check verifies its
# state dumps and screenshots. Skips (exit 77) when xvfb-run is missing; the training part needs KRAUSE_DATA_DIR.
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

    # A short run of the command line, whose metrics.jsonl the training script overlays on its
    # own curves (runs of the CLI and of the studio write the same log).
    # Skips (77) without MNIST, like the script that reads it.
    add_test(NAME StudioCliRun
             COMMAND sh -c "[ -d \"$KRAUSE_DATA_DIR/mnist\" ] || exit 77; rm -rf ${KRAUSE_STUDIO_OUT}/cli-run; exec \"$0\" \"$@\""
                     $<TARGET_FILE:krause> train --preset mnist-tiny --data mnist --steps 6
                     --batch 4 --eval-every 3 --eval-limit 16 --preview 0 --log-every 1
                     --out ${KRAUSE_STUDIO_OUT}/cli-run)
    set_tests_properties(StudioCliRun PROPERTIES FIXTURES_SETUP studio_models
                         SKIP_RETURN_CODE 77)

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
    add_test(NAME StudioDataScript
             COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/studio/run_data_test.sh
                     $<TARGET_FILE:krause-studio> $<TARGET_FILE:studio_check>
                     ${CMAKE_CURRENT_LIST_DIR}/studio/data.txt
                     ${CMAKE_CURRENT_LIST_DIR}/studio/data.expect ${KRAUSE_STUDIO_OUT}/data)
    add_test(NAME StudioBundledScript
             COMMAND bash ${runner} $<TARGET_FILE:krause-studio> $<TARGET_FILE:studio_check>
                     ${CMAKE_CURRENT_LIST_DIR}/studio/bundled.txt
                     ${CMAKE_CURRENT_LIST_DIR}/studio/bundled.expect ${KRAUSE_STUDIO_OUT}/bundled)
    set_tests_properties(StudioBundledScript PROPERTIES
        FIXTURES_REQUIRED studio_models
        ENVIRONMENT "STUDIO_MODELS=${KRAUSE_STUDIO_OUT}/models"
        SKIP_RETURN_CODE 77
        TIMEOUT 600
        RUN_SERIAL TRUE)
    add_test(NAME StudioDynamicsScript
             COMMAND bash ${runner} $<TARGET_FILE:krause-studio> $<TARGET_FILE:studio_check>
                     ${CMAKE_CURRENT_LIST_DIR}/studio/dynamics.txt
                     ${CMAKE_CURRENT_LIST_DIR}/studio/dynamics.expect ${KRAUSE_STUDIO_OUT}/dynamics
                     --needs-data)
    add_test(NAME StudioShortcutsScript
             COMMAND bash ${runner} $<TARGET_FILE:krause-studio> $<TARGET_FILE:studio_check>
                     ${CMAKE_CURRENT_LIST_DIR}/studio/shortcuts.txt
                     ${CMAKE_CURRENT_LIST_DIR}/studio/shortcuts.expect
                     ${KRAUSE_STUDIO_OUT}/shortcuts)
    set_tests_properties(StudioScript StudioTrainScript StudioDataScript StudioDynamicsScript
                         StudioShortcutsScript PROPERTIES
        FIXTURES_REQUIRED studio_models
        ENVIRONMENT "STUDIO_MODELS=${KRAUSE_STUDIO_OUT}/models"
        SKIP_RETURN_CODE 77
        TIMEOUT 900
        RUN_SERIAL TRUE)
    # The training script plays on the small screen a laptop has: the run's controls must stay
    # in view.
    set_tests_properties(StudioTrainScript PROPERTIES ENVIRONMENT
        "STUDIO_MODELS=${KRAUSE_STUDIO_OUT}/models;STUDIO_CLI_RUN=${KRAUSE_STUDIO_OUT}/cli-run;STUDIO_GEOMETRY=1280x720")
endif()
