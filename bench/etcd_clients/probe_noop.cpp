// The floor: a static executable that does nothing (fork, exec, exit).
int main() { return 0; }
