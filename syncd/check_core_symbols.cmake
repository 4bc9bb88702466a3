# Fails the build when the replication core references a symbol of an API
# it must not use: sockets, netlink, conntrack, TLS (DESIGN.md "Inside
# syncd": the core sees trackers and channels only through their ops).
find_program(NM nm REQUIRED)
execute_process(COMMAND ${NM} -u ${LIB} OUTPUT_VARIABLE undef RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm ${LIB} failed")
endif()
set(forbidden
  "^(socket|bind|connect|listen|accept4?|send|sendto|sendmsg|sendmmsg|recv|recvfrom|recvmsg|recvmmsg|setsockopt|getsockopt|getifaddrs|if_nametoindex|select|poll|usleep|nanosleep|sleep)$"
  "^(mnl_|nfct_|nfexp_|nflog_|SSL_|EVP_|OPENSSL_|TLS_)")
string(REPLACE "\n" ";" lines "${undef}")
foreach(line ${lines})
  string(STRIP "${line}" line)
  string(REGEX REPLACE "^U +" "" sym "${line}")
  string(REGEX REPLACE "@.*$" "" sym "${sym}")
  foreach(pat ${forbidden})
    if(sym MATCHES "${pat}")
      message(FATAL_ERROR "replication core references ${sym}: sockets, netlink, "
                          "conntrack and TLS belong behind tracker_ops / chan_ops")
    endif()
  endforeach()
endforeach()
