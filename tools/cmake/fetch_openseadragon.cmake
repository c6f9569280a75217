# Fetches the pinned OpenSeadragon from the npm registry into OUT_DIR
# (openseadragon.min.js and images/), for `tessera view`. Run by the build
# (cmake -P), not at configure time, so a configure needs no network.
#
# The viewer is optional: when npm or the registry is unreachable this
# writes OUT_DIR/MISSING.txt saying why instead of failing the build, and
# `tessera view` prints it.
#   -DNPM=path/to/npm -DOUT_DIR=... -DVERSION=5.0.1 -DSHA512=<hex of the tarball>
cmake_minimum_required(VERSION 3.22)
file(REMOVE_RECURSE "${OUT_DIR}")
file(MAKE_DIRECTORY "${OUT_DIR}")
set(work "${OUT_DIR}.work")
file(REMOVE_RECURSE "${work}")
file(MAKE_DIRECTORY "${work}")

function(missing why)
  file(WRITE "${OUT_DIR}/MISSING.txt" "${why}\n")
  message(WARNING "tessera view will not work: ${why}")
  file(REMOVE_RECURSE "${work}")
endfunction()

if(NOT NPM)
  missing("npm was not found when tessera was configured; install npm (Debian: apt-get install npm), re-run cmake and rebuild")
  return()
endif()
execute_process(COMMAND "${NPM}" pack "openseadragon@${VERSION}" --silent --pack-destination "${work}"
  WORKING_DIRECTORY "${work}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 180)
set(tgz "${work}/openseadragon-${VERSION}.tgz")
if(NOT rc EQUAL 0 OR NOT EXISTS "${tgz}")
  string(STRIP "${err}" err)
  missing("`npm pack openseadragon@${VERSION}` failed (${rc}): ${err}; check the network or npm's registry setting and rebuild")
  return()
endif()
# npm checks the registry's own integrity field; this pins the bytes we reviewed
file(SHA512 "${tgz}" got)
if(NOT got STREQUAL SHA512)
  missing("openseadragon-${VERSION}.tgz from npm has SHA-512 ${got}, not the pinned ${SHA512}; refusing to use it")
  return()
endif()
file(ARCHIVE_EXTRACT INPUT "${tgz}" DESTINATION "${work}")
set(dist "${work}/package/build/openseadragon")
if(NOT EXISTS "${dist}/openseadragon.min.js")
  missing("openseadragon-${VERSION}.tgz has no build/openseadragon/openseadragon.min.js")
  return()
endif()
file(COPY "${dist}/openseadragon.min.js" "${dist}/images" DESTINATION "${OUT_DIR}")
file(GLOB licence "${work}/package/LICENSE*")
if(licence)
  file(COPY ${licence} DESTINATION "${OUT_DIR}")
endif()
file(WRITE "${OUT_DIR}/VERSION.txt" "openseadragon ${VERSION} from registry.npmjs.org, SHA-512 ${SHA512}\n")
file(REMOVE_RECURSE "${work}")
