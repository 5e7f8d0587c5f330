#include <stdio.h>
int main(void) { fputs("wandler: under construction\n", stderr); return 1; }
