#include <stdio.h>

int main(void)
{
	puts("this line lacks its semicolon")
	return 0;
}
