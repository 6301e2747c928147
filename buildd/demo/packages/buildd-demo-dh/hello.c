#include <stdio.h>

int main(void)
{
	puts("Hello from debhelper.");
	return 0;
}
