#include <stdio.h>

int main(void)
{
	puts("tiny-c says hello");
	return 0;
}
