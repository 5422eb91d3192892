# Strict warnings for every target of ours; BCN_WERROR makes them fatal.
# BCN_SANITIZERS adds ASan and UBSan (any UB finding aborts); the run
# time options are set on the tests (tests/CMakeLists.txt).
set(BCN_WARNING_FLAGS
    -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow
    -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wundef
    -Wcast-qual -Wwrite-strings -Wvla -Wnull-dereference)

function(bcn_warnings target)
    target_compile_options(${target} PRIVATE ${BCN_WARNING_FLAGS})
    if(BCN_WERROR)
        target_compile_options(${target} PRIVATE -Werror)
    endif()
    if(BCN_SANITIZERS)
        target_compile_options(${target} PRIVATE
            -fsanitize=address,undefined -fno-omit-frame-pointer
            -fno-sanitize-recover=all)
        target_link_options(${target} PRIVATE -fsanitize=address,undefined)
    endif()
endfunction()

# A fuzz build instruments everything it compiles, the libraries of ours
# the targets link included, for libFuzzer's coverage; the targets
# themselves link -fsanitize=fuzzer (tests/fuzz/CMakeLists.txt).
if(BCN_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
        message(FATAL_ERROR "BCN_FUZZ needs clang: "
            "cmake -DCMAKE_C_COMPILER=clang-14 -DBCN_FUZZ=ON")
    endif()
    add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
        -fno-sanitize-recover=all -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
endif()
