/*
 * hello-httpd: answers every HTTP request on port 8080 with "hello from kjx".
 * A stand-in for a binary Debian does not ship, built static so the guest needs
 * no libraries for it (see README.md and components/hello.yaml).
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PORT 8080

static const char reply[] =
    "HTTP/1.0 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 15\r\n"
    "Connection: close\r\n"
    "\r\n"
    "hello from kjx\n";

int main(void) {
  /* a client that hangs up mid-reply must not end the daemon */
  signal(SIGPIPE, SIG_IGN);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) {
    perror("socket");
    return 1;
  }
  int on = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons(PORT);
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 16) < 0) {
    perror("bind/listen");
    return 1;
  }
  fprintf(stderr, "hello-httpd: listening on port %d\n", PORT);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    char buf[1024];
    /* the request itself does not matter: every path gets the same answer */
    if (read(c, buf, sizeof buf) >= 0) {
      ssize_t ignored = write(c, reply, sizeof reply - 1);
      (void)ignored;
    }
    close(c);
  }
}
