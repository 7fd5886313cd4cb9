# Warning flags as an INTERFACE target; link it PRIVATE through
# $<BUILD_INTERFACE:...> so exported targets do not depend on it.
add_library(pl_warnings INTERFACE)
add_library(portalock::warnings ALIAS pl_warnings)
if(MSVC)
    target_compile_options(pl_warnings INTERFACE /W4 $<$<BOOL:${PL_WERROR}>:/WX>)
else()
    target_compile_options(pl_warnings INTERFACE
        $<$<COMPILE_LANG_AND_ID:C,GNU,Clang,AppleClang>:-Wall -Wextra -Wpedantic -Wshadow
            -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral>
        $<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang,AppleClang>:-Wall -Wextra -Wpedantic>
        $<$<BOOL:${PL_WERROR}>:-Werror>)
endif()
