int main() { return 0; }  // Anchor of the executables precompiled header (CMakeLists.txt).
