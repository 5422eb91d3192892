# The dashboard's browser libraries come from npm at build time, pinned by
# package-lock.json, and are copied into static/vendor/ (git-ignored) so
# that the source static/ directory, which `make run` and a plain
# `--static-dir static` serve, is complete after a build.  `npm ci` runs in
# the build directory, only when the lock file changed; it needs the npm
# registry (or npm's cache) and nothing else.
#
# Without npm the server still builds and the dashboard still works, but
# its charts say that the chart library is missing.

find_program(BCN_NPM npm)
if(NOT BCN_NPM)
    message(WARNING "npm not found: the dashboard is built without its "
        "chart library (tools/deps.sh installs nodejs and npm)")
    return()
endif()

set(bcn_npm_dir ${CMAKE_BINARY_DIR}/npm)
set(bcn_vendor_dir ${CMAKE_SOURCE_DIR}/static/vendor)
set(bcn_uplot ${bcn_npm_dir}/node_modules/uplot)
set(bcn_vendor_files
    ${bcn_vendor_dir}/uPlot.esm.js
    ${bcn_vendor_dir}/uPlot.min.css
    ${bcn_vendor_dir}/uPlot.LICENSE.txt)

configure_file(${CMAKE_SOURCE_DIR}/package.json
    ${bcn_npm_dir}/package.json COPYONLY)
configure_file(${CMAKE_SOURCE_DIR}/package-lock.json
    ${bcn_npm_dir}/package-lock.json COPYONLY)

add_custom_command(OUTPUT ${bcn_npm_dir}/npm-ci.stamp
    COMMAND ${BCN_NPM} ci --ignore-scripts --no-audit --no-fund
        --loglevel=error
    COMMAND ${CMAKE_COMMAND} -E touch ${bcn_npm_dir}/npm-ci.stamp
    DEPENDS ${bcn_npm_dir}/package.json ${bcn_npm_dir}/package-lock.json
    WORKING_DIRECTORY ${bcn_npm_dir}
    COMMENT "npm ci: dashboard libraries"
    VERBATIM)

add_custom_command(OUTPUT ${bcn_vendor_files}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${bcn_vendor_dir}
    COMMAND ${CMAKE_COMMAND} -E copy_if_different
        ${bcn_uplot}/dist/uPlot.esm.js ${bcn_uplot}/dist/uPlot.min.css
        ${bcn_vendor_dir}
    COMMAND ${CMAKE_COMMAND} -E copy_if_different
        ${bcn_uplot}/LICENSE ${bcn_vendor_dir}/uPlot.LICENSE.txt
    DEPENDS ${bcn_npm_dir}/npm-ci.stamp
    COMMENT "static/vendor: uPlot"
    VERBATIM)

add_custom_target(dashboard_vendor ALL DEPENDS ${bcn_vendor_files})
