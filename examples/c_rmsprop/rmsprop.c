/* torch.optim.RMSprop in C, run on rmsprop-harness golden vectors (docs/vectors.md).
 *
 *   cc -O2 -o rmsprop rmsprop.c -lm
 *   rmsprop-harness vectors export --preset torch --out vectors/
 *   ./rmsprop $(find vectors/torch -name '*.txt') > results.json
 *   rmsprop-harness vectors check vectors/ --results results.json
 *
 * The optimizer is STEP below (20 lines), instantiated for float and double; the rest reads the
 * vectors' token stream (hex floats, strtod) and prints the parameters and state after every step
 * as JSON with C99 %a, exactly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { double lr, alpha, eps, weight_decay, momentum, centered, maximize; } Args;

/* One step of torch.optim.RMSprop on n values (torch/optim/rmsprop.py, _single_tensor_rmsprop). */
#define STEP(T, NAME, SQRT)                                                                    \
static void NAME(const Args *a, T lr, int n, T *p, const T *grad, T *v, T *m, T *b) {           \
    T alpha = (T)a->alpha, eps = (T)a->eps, wd = (T)a->weight_decay, mom = (T)a->momentum;      \
    for (int i = 0; i < n; i++) {                                                               \
        T g = a->maximize ? -grad[i] : grad[i];                                                 \
        if (wd != 0) g = g + wd * p[i];                                                         \
        v[i] = v[i] * alpha + (1 - alpha) * g * g;                                               \
        T avg;                                                                                  \
        if (a->centered) {                                                                      \
            m[i] = m[i] * alpha + (1 - alpha) * g;                                               \
            avg = SQRT(v[i] - m[i] * m[i]) + eps;                                                \
        } else {                                                                                \
            avg = SQRT(v[i]) + eps;                                                              \
        }                                                                                       \
        if (mom > 0) {                                                                          \
            b[i] = b[i] * mom + g / avg;                                                        \
            p[i] = p[i] - lr * b[i];                                                            \
        } else {                                                                                \
            p[i] = p[i] - lr * (g / avg);                                                       \
        }                                                                                       \
    }                                                                                           \
}
STEP(float, step_f32, sqrtf)
STEP(double, step_f64, sqrt)

/* ------------------------------------------------------------------ reading and writing */
#define MAXT 16
static FILE *in;
static char tok[256];
static const char *next(void) { if (fscanf(in, "%255s", tok) != 1) { fprintf(stderr, "truncated vector\n"); exit(2); } return tok; }
static void expect(const char *w) { if (strcmp(next(), w)) { fprintf(stderr, "expected %s, got %s\n", w, tok); exit(2); } }
static double num(void) { return strtod(next(), NULL); }

static void emit(const char *name, const double *rows, int steps, int n, int last) {
    printf("\"%s\": [", name);
    for (int t = 0; t < steps; t++) {
        printf("%s[", t ? ", " : "");
        for (int i = 0; i < n; i++) printf("%s\"%a\"", i ? ", " : "", rows[(size_t)t * n + i]);
        printf("]");
    }
    printf("]%s", last ? "" : ", ");
}

int main(int argc, char **argv) {
    printf("{\"implementation\": \"c_rmsprop\", \"vectors\": {");
    for (int f = 1; f < argc; f++) {
        in = fopen(argv[f], "r");
        if (!in) { perror(argv[f]); return 2; }
        char id[256];
        expect("rmsprop-harness-vectors-1"); expect("id"); strcpy(id, next());
        expect("dtype"); int f32 = !strcmp(next(), "float32");
        Args a = {0.01, 0.99, 1e-8, 0, 0, 0, 0};  /* torch's defaults; the vector states every argument it sets */
        expect("args");
        for (int k = (int)num(); k > 0; k--) {
            char key[64]; strcpy(key, next()); double x = num();
            if (!strcmp(key, "lr")) a.lr = x; else if (!strcmp(key, "alpha")) a.alpha = x;
            else if (!strcmp(key, "eps")) a.eps = x; else if (!strcmp(key, "weight_decay")) a.weight_decay = x;
            else if (!strcmp(key, "momentum")) a.momentum = x; else if (!strcmp(key, "centered")) a.centered = x;
            else if (!strcmp(key, "maximize")) a.maximize = x;
            else if (strcmp(key, "foreach") && strcmp(key, "capturable") && strcmp(key, "differentiable")) {
                fprintf(stderr, "%s: argument %s is not implemented here\n", id, key); return 2;
            }
        }
        expect("tensors"); int nt = (int)num(); char names[MAXT][64]; int size[MAXT];
        for (int t = 0; t < nt; t++) { strcpy(names[t], next()); size[t] = (int)num(); }
        expect("state"); int ns = (int)num(); char kinds[3][16];
        for (int s = 0; s < ns; s++) strcpy(kinds[s], next());
        double *x[MAXT][4];  /* per tensor: param, nu, mu, trace (in the vector's dtype, held as double) */
        for (int t = 0; t < nt; t++) {
            for (int s = 0; s < 4; s++) x[t][s] = calloc(size[t], sizeof(double));
            expect("param"); next();
            for (int i = 0; i < size[t]; i++) x[t][0][i] = num();
            for (int s = 0; s < ns; s++) {
                next(); next();
                int slot = !strcmp(kinds[s], "nu") ? 1 : !strcmp(kinds[s], "mu") ? 2 : 3;
                for (int i = 0; i < size[t]; i++) x[t][slot][i] = num();
            }
        }
        expect("steps"); int steps = (int)num();
        double *out[MAXT][4];
        for (int t = 0; t < nt; t++) for (int s = 0; s < 4; s++) out[t][s] = malloc(sizeof(double) * steps * size[t]);
        for (int k = 0; k < steps; k++) {
            expect("lr"); double lr = num();
            for (int t = 0; t < nt; t++) {
                int n = size[t];
                double *g = malloc(sizeof(double) * n);
                expect("grad"); next();
                for (int i = 0; i < n; i++) g[i] = num();
                if (f32) {  /* float32: every array and every operation in float */
                    float *buf = malloc(sizeof(float) * 5 * n);
                    for (int s = 0; s < 4; s++) for (int i = 0; i < n; i++) buf[s * n + i] = (float)x[t][s][i];
                    for (int i = 0; i < n; i++) buf[4 * n + i] = (float)g[i];
                    step_f32(&a, (float)lr, n, buf, buf + 4 * n, buf + n, buf + 2 * n, buf + 3 * n);
                    for (int s = 0; s < 4; s++) for (int i = 0; i < n; i++) x[t][s][i] = buf[s * n + i];
                    free(buf);
                } else {
                    step_f64(&a, lr, n, x[t][0], g, x[t][1], x[t][2], x[t][3]);
                }
                for (int s = 0; s < 4; s++) memcpy(out[t][s] + (size_t)k * n, x[t][s], sizeof(double) * n);
                free(g);
            }
        }
        printf("%s\"%s\": {\"params\": {", f > 1 ? ", " : "", id);
        for (int t = 0; t < nt; t++) emit(names[t], out[t][0], steps, size[t], t == nt - 1);
        printf("}, \"state\": {");
        for (int s = 0; s < ns; s++) {
            int slot = !strcmp(kinds[s], "nu") ? 1 : !strcmp(kinds[s], "mu") ? 2 : 3;
            printf("\"%s\": {", kinds[s]);
            for (int t = 0; t < nt; t++) emit(names[t], out[t][slot], steps, size[t], t == nt - 1);
            printf("}%s", s == ns - 1 ? "" : ", ");
        }
        printf("}}");
        for (int t = 0; t < nt; t++) for (int s = 0; s < 4; s++) { free(x[t][s]); free(out[t][s]); }
        fclose(in);
    }
    printf("}}\n");
    return 0;
}
