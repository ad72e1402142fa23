/*
 * exact_cxx.cc - C++ new/delete seen through malloc/free (libstdc++'s
 * operator new calls malloc). Frame 0 of these stacks is operator new in
 * libstdc++; the first frame outside libstdc++ is the named function.
 * Expected live numbers at exit:
 *   cxx_new        40 objects, 960 bytes   (new of a 24-byte struct x 40)
 *   cxx_new_array  5 objects, 2000 bytes   (new int[100] x 5)
 *   cxx_churn      0 objects, 0 bytes      (500 x new std::string(200 chars)
 *                                           + new/delete of vectors, all freed)
 * Prints nothing.
 */
#include <string>
#include <vector>

#define NOINLINE __attribute__((noinline))

struct item {
    long a, b, c;
};
static_assert(sizeof(item) == 24, "item is 24 bytes");

// Not static, and read back in main: the compiler may not drop the news.
item *items[40];
int *arrays[5];

extern "C" NOINLINE void cxx_new()
{
    for (int i = 0; i < 40; i++)
        items[i] = new item{i, i, i};
}

extern "C" NOINLINE void cxx_new_array()
{
    for (int i = 0; i < 5; i++) {
        arrays[i] = new int[100];
        arrays[i][99] = i;
    }
}

extern "C" NOINLINE void cxx_churn()
{
    for (int i = 0; i < 500; i++) {
        std::string *s = new std::string(200, static_cast<char>('a' + i % 26));
        std::vector<int> *v = new std::vector<int>(static_cast<size_t>(i % 50 + 1), i);
        if ((*s)[0] == 0 || (*v)[0] != i)
            __builtin_trap();
        delete v;
        delete s;
    }
}

int main()
{
    cxx_new();
    cxx_new_array();
    cxx_churn();
    long sum = 0;
    for (item *it : items)
        sum += it->a;
    for (int *a : arrays)
        sum += a[99];
    return sum == 780 + 10 ? 0 : 1;
}
