# krause-studio: the desktop application (included from app/CMakeLists.txt). krause_ui is defined
# later by ui/, which is fine: CMake resolves link targets when it generates.
if(KRAUSE_BUILD_GUI)
    add_executable(krause-studio ${CMAKE_CURRENT_LIST_DIR}/studio_main.cpp)
    target_link_libraries(krause-studio PRIVATE krause_ui)
endif()
