# Reliability tests (included from tests/CMakeLists.txt): crash safety of the krause CLI (kills,
# full disk, NaN, bad paths) in krause_tests; for every fuzz target of tests/fuzz/, a replay of
# its regression corpus (tests/fuzz_corpus/<target>/: each stored input once, deterministic) and
# a short fuzzing run of a few seconds that starts from that corpus and writes what it finds into
# the build folder only. scripts/fuzz.sh runs the long fuzzing.
target_sources(krause_tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/test_crash_safety.cpp)

option(KRAUSE_FUZZ_REPLAY
       "Build tests/fuzz/ with clang, replay tests/fuzz_corpus and fuzz briefly under CTest" ON)
set(KRAUSE_FUZZ_SECONDS 4 CACHE STRING "Seconds of fuzzing per target in the test suite")
set(KRAUSE_FUZZ_TARGETS fuzz_idx fuzz_cifar fuzz_gzip fuzz_model_config fuzz_train_config
    fuzz_png fuzz_safetensors fuzz_checkpoint)

if(KRAUSE_FUZZ_REPLAY)
    find_program(KRAUSE_CLANGXX NAMES clang++ clang++-16 clang++-15 clang++-14)
    set(KRAUSE_HAVE_LIBFUZZER OFF)
    if(KRAUSE_CLANGXX)
        set(probe ${CMAKE_CURRENT_BINARY_DIR}/libfuzzer_probe.cpp)
        file(WRITE ${probe}
             "extern \"C\" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }\n")
        execute_process(COMMAND ${KRAUSE_CLANGXX} -fsanitize=fuzzer,address,undefined ${probe}
                                -o ${CMAKE_CURRENT_BINARY_DIR}/libfuzzer_probe
                        RESULT_VARIABLE probe_result OUTPUT_QUIET ERROR_QUIET)
        if(probe_result EQUAL 0)
            set(KRAUSE_HAVE_LIBFUZZER ON)
        endif()
    endif()

    if(KRAUSE_HAVE_LIBFUZZER)
        include(ExternalProject)
        set(fuzz_args -DCMAKE_CXX_COMPILER=${KRAUSE_CLANGXX} -DCMAKE_BUILD_TYPE=RelWithDebInfo)
        if(CMAKE_CXX_COMPILER_LAUNCHER)
            list(APPEND fuzz_args -DCMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER})
        endif()
        set(fuzz_build ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
        ExternalProject_Add(krause_fuzz
            SOURCE_DIR ${CMAKE_CURRENT_LIST_DIR}/fuzz
            BINARY_DIR ${fuzz_build}
            CMAKE_ARGS ${fuzz_args}
            INSTALL_COMMAND ""
            BUILD_ALWAYS ON
            BUILD_BYPRODUCTS ${fuzz_build}/fuzz_idx)
        # LibTorch keeps allocations until exit that LeakSanitizer would report; every other
        # report aborts the run.
        set(fuzz_env "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1"
                     "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
        foreach(target ${KRAUSE_FUZZ_TARGETS})
            set(corpus ${CMAKE_CURRENT_LIST_DIR}/fuzz_corpus/${target})
            add_test(NAME FuzzReplay.${target}
                     COMMAND ${fuzz_build}/${target} -runs=0 -rss_limit_mb=2048 -timeout=60
                             ${corpus})
            set_tests_properties(FuzzReplay.${target} PROPERTIES TIMEOUT 600
                                 ENVIRONMENT "${fuzz_env}")
            # libFuzzer writes new inputs only into its first corpus folder, a fresh one in the
            # build folder; the committed corpus after it is only read.
            add_test(NAME FuzzShort.${target}
                     COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/fuzz/short_run.sh ${fuzz_build}/${target}
                             ${corpus} ${CMAKE_CURRENT_BINARY_DIR}/fuzz-short/${target}
                             ${KRAUSE_FUZZ_SECONDS})
            set_tests_properties(FuzzShort.${target} PROPERTIES TIMEOUT 300
                                 ENVIRONMENT "${fuzz_env}")
        endforeach()
        message(STATUS "Krause: fuzz corpus replay and short fuzzing registered (${KRAUSE_CLANGXX})")
    else()
        message(STATUS "Krause: no clang++ with libFuzzer, the fuzz corpus replay is not "
                       "registered (Debian: apt-get install clang libclang-rt-14-dev)")
    endif()
endif()
