package engine

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// kernelError turns a failed netlink command into a protocol error: what was being done (doing, e.g.
// "adding real server 10.0.0.2:80 to service tcp 192.0.2.10:80"), why in words, the errno and a stable code.
// destOp decides whether ESRCH means "the service is missing" (dest ops) or "the entry is missing".
func kernelError(doing string, err error, destOp bool) *protocol.Error {
	errno := ipvs.Errno(err)
	var rule *ipvs.RuleError
	if errors.As(err, &rule) {
		code := protocol.CodeBadRequest
		if rule.Unsupported {
			code = protocol.CodeUnsupported
		}
		return &protocol.Error{Code: code, Message: fmt.Sprintf("%s refused: %s", doing, rule.Msg)}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &protocol.Error{Code: protocol.CodeTimeout, Message: fmt.Sprintf("%s failed: %v.", doing, err)}
	}
	code, why := protocol.CodeInternal, err.Error()
	switch errno {
	case syscall.EEXIST:
		code, why = protocol.CodeExists, "it already exists"
	case syscall.ESRCH:
		if destOp {
			code, why = protocol.CodeServiceNotFound, "its service does not exist"
		} else {
			code, why = protocol.CodeNotFound, "the service does not exist"
		}
	case syscall.ENOENT:
		code, why = protocol.CodeNotFound, "the real server does not exist"
	case syscall.ERANGE:
		code, why = protocol.CodeOutOfRange, "the kernel says a value is out of range (weight above 2147483647, or lower threshold above upper threshold — an upper threshold of 0 allows no lower threshold)"
	case syscall.EINVAL:
		code, why = protocol.CodeInvalid, "the kernel rejected the entry as invalid (EINVAL)"
	case syscall.EPERM, syscall.EACCES:
		code, why = protocol.CodePermission, "permission denied: the helper needs root or CAP_NET_ADMIN"
	case 0:
	default:
		why = errno.Error()
	}
	return &protocol.Error{Code: code, Errno: int(errno), Message: fmt.Sprintf("%s failed: %s.", doing, why)}
}
