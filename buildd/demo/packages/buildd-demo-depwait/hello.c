#include <stdio.h>

int main(void)
{
	puts("Hello from the buildd demo.");
	return 0;
}
