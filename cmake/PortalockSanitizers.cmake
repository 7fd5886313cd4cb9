# PL_SANITIZE="address;undefined" (or "thread") instruments every target.
if(PL_SANITIZE)
    string(REPLACE ";" "," _pl_san "${PL_SANITIZE}")
    add_compile_options(-fsanitize=${_pl_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    add_link_options(-fsanitize=${_pl_san})
endif()
